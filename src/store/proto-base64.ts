/**
 * The one encoding of a CRI message inside a record: its protobuf bytes as base64.
 * Lossless for every field of the proto (bigints, defaults, maps, oneofs), compact, and
 * versioned by the proto itself: a field added to the proto later reads as its default.
 */
export interface ProtoType<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
}

export function toBase64<T>(type: ProtoType<T>, message: T): string {
  return Buffer.from(type.encode(message).finish()).toString('base64');
}

export function fromBase64<T>(type: ProtoType<T>, text: string): T {
  return type.decode(Buffer.from(text, 'base64'));
}
