// A plain libuv echo server: the baseline the Reactor's echo server is measured against.
//
// It sends back every byte it reads (so every frame of the 4-byte-length protocol comes back
// unchanged) without parsing frames: read into a fresh 64 KiB buffer, hand that same buffer to
// uv_write, free it in the write callback. Build: gcc -O2 -o echo_server echo_server.c -luv
// Run:   echo_server HOST PORT   (stops on SIGINT or SIGTERM)
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} write_req_t;

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_signal_t sigint_watcher, sigterm_watcher;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void on_close(uv_handle_t *handle) { free(handle); }

static void on_write(uv_write_t *req, int status) {
    write_req_t *wr = (write_req_t *)req;
    uv_handle_t *client = (uv_handle_t *)req->handle;
    free(wr->buf.base);
    free(wr);
    if (status < 0 && !uv_is_closing(client)) uv_close(client, on_close);
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf) {
    if (nread > 0) {
        write_req_t *wr = malloc(sizeof(*wr));
        wr->buf = uv_buf_init(buf->base, (unsigned)nread);
        if (uv_write(&wr->req, client, &wr->buf, 1, on_write) != 0) {
            free(buf->base);
            free(wr);
            if (!uv_is_closing((uv_handle_t *)client)) uv_close((uv_handle_t *)client, on_close);
        }
        return;
    }
    free(buf->base);
    if (nread < 0 && !uv_is_closing((uv_handle_t *)client)) uv_close((uv_handle_t *)client, on_close);
}

static void on_connection(uv_stream_t *listener, int status) {
    if (status < 0) return;
    uv_tcp_t *client = malloc(sizeof(*client));
    uv_tcp_init(loop, client);
    if (uv_accept(listener, (uv_stream_t *)client) == 0) {
        uv_tcp_nodelay(client, 1);
        uv_read_start((uv_stream_t *)client, on_alloc, on_read);
    } else {
        uv_close((uv_handle_t *)client, on_close);
    }
}

static void close_walk(uv_handle_t *handle, void *arg) {
    (void)arg;
    if (!uv_is_closing(handle)) uv_close(handle, handle->type == UV_TCP && handle != (uv_handle_t *)&server ? on_close : NULL);
}

static void on_signal(uv_signal_t *handle, int signum) {
    (void)signum;
    uv_walk(handle->loop, close_walk, NULL);
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    int port = argc > 2 ? atoi(argv[2]) : 7001;
    struct sockaddr_storage addr;
    // A peer that closes with echoes in flight must not kill the server: libuv writes with write(2).
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
        fprintf(stderr, "bad address %s\n", host);
        return 2;
    }
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&server, 1024, on_connection);
    if (rc != 0) {
        fprintf(stderr, "listen on %s:%d: %s\n", host, port, uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sigint_watcher);
    uv_signal_start(&sigint_watcher, on_signal, SIGINT);
    uv_signal_init(loop, &sigterm_watcher);
    uv_signal_start(&sigterm_watcher, on_signal, SIGTERM);
    printf("c-echo-server listening on %s:%d\n", host, port);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop) == 0 ? 0 : 1;
}
