#!/bin/sh
# Regenerates src/gen from proto/ with protoc (Debian's protobuf-compiler) and ts-proto.
# Only needed after editing the .proto: the generated code is committed so builds need no protoc.
set -eu
cd "$(dirname "$0")/.."
rm -rf src/gen && mkdir -p src/gen
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=src/gen \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,forceLong=bigint,importSuffix=.js,env=node,useExactTypes=false \
  -I proto proto/runtime/v1/api.proto proto/cricket/v1/cricket.proto
node scripts/gen-methods.mjs
