import { BinaryWriter } from '@bufbuild/protobuf/wire';

/**
 * A response whose protobuf bytes the handler already has: kubelet relists pods and
 * containers every second, and what it gets back changes only when a record does. The
 * handler keeps each item's bytes (per record, until its status changes), joins them,
 * and hangs them on the complete response object it returns; the wrapper then skips
 * fromPartial (the object is already whole) and the serializer sends the bytes as they
 * are. An in-process caller just sees the plain object.
 */
const WIRE_BYTES = Symbol('cricket.wireBytes');

export function withWireBytes<T extends object>(res: T, bytes: Uint8Array): T {
  Object.defineProperty(res, WIRE_BYTES, { value: bytes, enumerable: false });
  return res;
}

export function wireBytesOf(v: unknown): Uint8Array | undefined {
  return v !== null && typeof v === 'object' ? ((v as Record<symbol, unknown>)[WIRE_BYTES] as Uint8Array | undefined) : undefined;
}

/** The bytes of a message whose only field is `field`, a repeated message, from each item's encoded bytes. */
export function repeatedMessageBytes(field: number, items: readonly Uint8Array[]): Uint8Array {
  const w = new BinaryWriter();
  for (const b of items) w.uint32((field << 3) | 2).bytes(b);
  return w.finish();
}
