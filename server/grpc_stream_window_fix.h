// A work-around for gRPC 1.51.1's stream flow control, which answers every
// message read on a stream with a WINDOW_UPDATE frame of its own.
//
// In Debian 12's gRPC (1.51.1-3+b1), chttp2's StreamFlowControl::UpdateAction
// asks for an immediate window update whenever a reader is waiting and any
// byte of the stream window is consumed, so each message read costs the
// reader a write and the sender a wake-up to read the 13-26 byte frame: at
// put-1 that doubled the packets and epoll wake-ups of every member
// (docs/BENCHMARKS.md). Upstream fixed this in grpc/grpc#31180 (later
// releases): a waiting reader hurries the update only once half the initial
// window is used, and otherwise it rides on the next write.
//
// Linking this library into a binary replaces that one function (symbol
// interposition: libgrpc calls it through its PLT) with the fixed rule, but
// only after checking that the process's libgrpc holds exactly the machine
// code this was written against (the struct offsets it reads are the ones
// that code uses). Any other gRPC build gets its own function, unchanged,
// and so does a process that ever sees an HTTP/2 initial window below the
// default (BDP probing under memory pressure): the fixed rule here assumes
// the peer was told at least the default.
//
// Only binaries link it (a cc_library with alwayslink), never a library a
// user embeds: the server, and the benchmark generator (for both targets
// alike: its reads of etcd's answers no longer cost etcd a frame each).
#ifndef RAFTKV_SERVER_GRPC_STREAM_WINDOW_FIX_H_
#define RAFTKV_SERVER_GRPC_STREAM_WINDOW_FIX_H_

namespace raftkv::server {

// True when the fixed rule is in use: this process's libgrpc is the build
// whose code was checked, its calls reach this library's definition, and no
// small window was seen (see above). False: gRPC's own rule runs.
// Thread-safe; the check runs once.
bool StreamWindowFixActive();

}  // namespace raftkv::server

#endif  // RAFTKV_SERVER_GRPC_STREAM_WINDOW_FIX_H_
