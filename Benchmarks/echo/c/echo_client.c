// A plain libuv load client for the pipelined echo cases: the other side of the measurement, so that
// the servers are also compared under a client that is not itself built on the Reactor.
//
// Each of CONNECTIONS connections keeps WINDOW frames of SIZE payload bytes (4-byte little-endian length, as the Reactor frames,
// then the payload) in flight: it sends WINDOW frames, and one more each time a whole frame has come
// back. Replies are only counted, not parsed beyond their length prefixes. Frames echoed during
// WARMUP seconds are not counted; then it counts for SECONDS and prints one line in the format of
// `ps-bench echo`'s summary (frames_per_s=, mb_per_s= with MB = 10^6 payload bytes one way).
//
// Build: gcc -O2 -o echo_client echo_client.c -luv
// Run:   echo_client HOST PORT CONNECTIONS SIZE WINDOW SECONDS WARMUP
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uint64_t remaining;   // bytes of the reply frame being read (prefix included) still to come
    uint8_t prefix[4];    // the reply's length prefix, gathered when it is split across reads
    int prefix_bytes;
} connection_t;

static uv_loop_t *loop;
static uv_timer_t warmup_timer, stop_timer;
static uv_buf_t frame;          // one frame, prefix and payload, shared by every write
static uint64_t frame_bytes;    // 4 + SIZE
static uint64_t counted;        // frames echoed while measuring
static int measuring;
static char read_buffer[1 << 20];
static uv_write_t *spare_writes;
static int window;             // frames each connection keeps in flight

static void fail(const char *what, int status) {
    fprintf(stderr, "echo_client: %s: %s\n", what, uv_strerror(status));
    exit(1);
}

static void on_write(uv_write_t *req, int status) {
    if (status < 0) fail("write", status);
    req->data = spare_writes;
    spare_writes = req;
}

static void send_frame(connection_t *c) {
    uv_write_t *req = spare_writes;
    if (req) spare_writes = req->data; else req = malloc(sizeof(*req));
    int status = uv_write(req, (uv_stream_t *)&c->tcp, &frame, 1, on_write);
    if (status < 0) fail("uv_write", status);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(read_buffer, sizeof(read_buffer));  // one loop thread: one buffer serves all
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    connection_t *c = (connection_t *)stream;
    if (nread < 0) fail("read", (int)nread);
    const uint8_t *p = (const uint8_t *)buf->base;
    ssize_t left = nread;
    while (left > 0) {
        if (c->remaining == 0) {  // at a frame boundary: gather the 4-byte prefix
            int take = 4 - c->prefix_bytes < left ? 4 - c->prefix_bytes : (int)left;
            memcpy(c->prefix + c->prefix_bytes, p, (size_t)take);
            c->prefix_bytes += take;
            p += take;
            left -= take;
            if (c->prefix_bytes < 4) break;
            uint64_t length = ((uint64_t)c->prefix[3] << 24) | ((uint64_t)c->prefix[2] << 16) | ((uint64_t)c->prefix[1] << 8) | c->prefix[0];
            if (length + 4 != frame_bytes) {
                fprintf(stderr, "echo_client: a reply of %llu bytes, expected %llu\n", (unsigned long long)length, (unsigned long long)(frame_bytes - 4));
                exit(1);
            }
            c->prefix_bytes = 0;
            c->remaining = length;
            if (c->remaining > 0) continue;
        } else {
            uint64_t take = c->remaining < (uint64_t)left ? c->remaining : (uint64_t)left;
            c->remaining -= take;
            p += take;
            left -= (ssize_t)take;
            if (c->remaining > 0) break;
        }
        if (measuring) counted++;
        send_frame(c);
    }
}

static void on_connect(uv_connect_t *req, int status) {
    if (status < 0) fail("connect", status);
    connection_t *c = req->data;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    for (int w = 0; w < window; w++) send_frame(c);
}

static void on_warmup_end(uv_timer_t *timer) {
    (void)timer;
    measuring = 1;
}

static void on_stop(uv_timer_t *timer) {
    (void)timer;
    uv_stop(loop);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: echo_client HOST PORT CONNECTIONS SIZE WINDOW SECONDS WARMUP\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), connections = atoi(argv[3]);
    window = atoi(argv[5]);
    uint64_t size = strtoull(argv[4], NULL, 10);
    double seconds = atof(argv[6]), warmup = atof(argv[7]);
    if (port <= 0 || connections <= 0 || window <= 0 || size == 0 || size > 0xFFFFFFFFull || seconds <= 0 || warmup < 0) {
        fprintf(stderr, "echo_client: every number must be positive (warmup may be 0), SIZE below 4 GiB\n");
        return 2;
    }
    loop = uv_default_loop();
    frame_bytes = size + 4;
    frame = uv_buf_init(calloc(1, frame_bytes), (unsigned)frame_bytes);
    uint8_t *bytes = (uint8_t *)frame.base;
    bytes[0] = (uint8_t)size; bytes[1] = (uint8_t)(size >> 8); bytes[2] = (uint8_t)(size >> 16); bytes[3] = (uint8_t)(size >> 24);

    struct sockaddr_in addr;
    int status = uv_ip4_addr(host, port, &addr);
    if (status < 0) fail("address", status);
    connection_t *all = calloc((size_t)connections, sizeof(connection_t));
    for (int i = 0; i < connections; i++) {
        uv_tcp_init(loop, &all[i].tcp);
        all[i].connect.data = &all[i];
        status = uv_tcp_connect(&all[i].connect, &all[i].tcp, (const struct sockaddr *)&addr, on_connect);
        if (status < 0) fail("uv_tcp_connect", status);
    }
    uv_timer_init(loop, &warmup_timer);
    uv_timer_init(loop, &stop_timer);
    uv_timer_start(&warmup_timer, on_warmup_end, (uint64_t)(warmup * 1000), 0);
    // The measured window starts when warm-up ends; the stop timer is armed from the same origin.
    uv_timer_start(&stop_timer, on_stop, (uint64_t)((warmup + seconds) * 1000), 0);
    uint64_t started = uv_now(loop);
    uv_run(loop, UV_RUN_DEFAULT);
    double measured = (double)(uv_now(loop) - started) / 1000.0 - warmup;
    if (measured <= 0) measured = seconds;
    double per_second = (double)counted / measured;
    printf("summary mode=pipelined client=c-libuv connections=%d size=%llu window=%d seconds=%.3f frames=%llu frames_per_s=%.0f mb_per_s=%.1f wrong_sizes=0\n",
           connections, (unsigned long long)size, window, measured, (unsigned long long)counted, per_second,
           per_second * (double)size / 1e6);
    return 0;
}
