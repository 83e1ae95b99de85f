// A SwiftNIO server for Downpour's echo protocol: a frame is a 4-byte little-endian length N and N
// bytes; every frame goes back unchanged. It decodes frames (as the Reactor's server does), writes
// each one back and flushes once per read burst, on one event-loop thread.
//
// Run: nio-echo-server HOST PORT   (stops on SIGINT or SIGTERM)
import Dispatch
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Splits the stream into frames and passes each one on as a ByteBuffer slice (length prefix included).
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self),
              buffer.readableBytes >= 4 + Int(length),
              let frame = buffer.readSlice(length: 4 + Int(length)) else {
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }
}

/// Writes each frame back; flushes when the read burst ends.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

let arguments = CommandLine.arguments
let host = arguments.count > 1 ? arguments[1] : "127.0.0.1"
let port = arguments.count > 2 ? Int(arguments[2]) ?? 7003 : 7003

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
            try channel.pipeline.syncOperations.addHandler(EchoHandler())
        }
    }

let channel = try bootstrap.bind(host: host, port: port).wait()
print("nio-echo-server listening on \(channel.localAddress!)")
fflush(nil)  // stdout, so the run script sees the line

// Stop on SIGINT or SIGTERM.
let sources = closeOnSignals(channel)
try channel.closeFuture.wait()
try group.syncShutdownGracefully()
_ = sources

/// Closes `channel` on SIGINT or SIGTERM (handled on a dispatch queue, not the main actor).
nonisolated func closeOnSignals(_ channel: any Channel) -> [any DispatchSourceSignal] {
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let queue = DispatchQueue(label: "signals")
    return [SIGINT, SIGTERM].map { number in
        let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
        source.setEventHandler { channel.close(promise: nil) }
        source.resume()
        return source
    }
}
