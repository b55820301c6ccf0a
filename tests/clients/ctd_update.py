#!/usr/bin/env python3
"""ctd_update.py SOCKET NAMESPACE CONTAINER_ID RESOURCES_JSON

Calls containerd.services.tasks.v1.Tasks/Update (what CRI's UpdateContainerResources does; `ctr` has
no update command) with hand-encoded protobuf: the resources travel as a google.protobuf.Any holding
the JSON of an OCI LinuxResources.  Needs grpcio only (Debian: python3-grpcio).
"""
import sys

import grpc


def varint(n):
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(num, data):
    """A length-delimited protobuf field."""
    return varint(num << 3 | 2) + varint(len(data)) + data


def main(sock, namespace, cid, resources):
    any_value = (field(1, b"types.containerd.io/opencontainers/runtime-spec/1/LinuxResources")
                 + field(2, resources.encode()))
    request = field(1, cid.encode()) + field(2, any_value)      # UpdateTaskRequest{container_id, resources}
    with grpc.insecure_channel("unix://" + sock) as channel:
        call = channel.unary_unary("/containerd.services.tasks.v1.Tasks/Update",
                                   request_serializer=lambda x: x, response_deserializer=lambda x: x)
        try:
            call(request, metadata=[("containerd-namespace", namespace)], timeout=30)
        except grpc.RpcError as e:
            sys.stderr.write("update failed: %s: %s\n" % (e.code().name, e.details()))
            return 1
    print("update ok")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:5]))
