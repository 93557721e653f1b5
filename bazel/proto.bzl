"""raftkv_proto: C++ (and optionally gRPC) code from .proto files with Debian's protoc.

Bazel 4.2.3's proto rules would fetch protobuf's sources; this macro runs the
system protoc and grpc_cpp_plugin instead, so the build stays offline.
"""

def raftkv_proto(name, srcs, deps = [], grpc = False, visibility = None):
    """Declares `name`, a cc_library with the generated code of `srcs`.

    Args:
      name: the cc_library's name; `<name>_files` holds the .proto files.
      srcs: .proto files in this package, imported as "<package>/<file>".
      deps: other raftkv_proto targets whose files `srcs` import.
      grpc: also generate gRPC service stubs.
      visibility: of the cc_library.
    """
    stems = [s[:-len(".proto")] for s in srcs]
    outs = [s + ".pb.h" for s in stems] + [s + ".pb.cc" for s in stems]
    if grpc:
        outs += [s + ".grpc.pb.h" for s in stems] + [s + ".grpc.pb.cc" for s in stems]

    native.filegroup(
        name = name + "_files",
        srcs = srcs + [d + "_files" for d in deps],
        visibility = visibility,
    )

    grpc_flags = ""
    if grpc:
        grpc_flags = ("--grpc_out=$(GENDIR) " +
                      "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) ")
    native.genrule(
        name = name + "_gen",
        srcs = srcs + [d + "_files" for d in deps],
        outs = outs,
        cmd = ("protoc -I. --cpp_out=$(GENDIR) " + grpc_flags +
               " ".join(["$(location %s)" % s for s in srcs])),
        message = "protoc " + name,
    )

    libs = ["@system//:protobuf"]
    if grpc:
        libs.append("@system//:grpc")
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + libs,
        visibility = visibility,
    )
