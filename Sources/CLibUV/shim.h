#ifndef DOWNPOUR_CLIBUV_SHIM_H
#define DOWNPOUR_CLIBUV_SHIM_H
// The one header through which Swift sees libuv. Casts between handle types and other C-only
// conveniences live here as static inline helpers, so the Swift side never does pointer punning.
#include <uv.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/prctl.h>

/// Names the calling thread (as `top -H` and debuggers show it); Linux keeps 15 bytes.
static inline void downpour_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

// MARK: Handle and request casts (libuv's "inheritance" is struct prefixing).

static inline uv_handle_t *downpour_tcp_as_handle(uv_tcp_t *tcp) { return (uv_handle_t *)tcp; }
static inline uv_stream_t *downpour_tcp_as_stream(uv_tcp_t *tcp) { return (uv_stream_t *)tcp; }
static inline uv_tcp_t *downpour_stream_as_tcp(uv_stream_t *stream) { return (uv_tcp_t *)stream; }
static inline uv_handle_t *downpour_timer_as_handle(uv_timer_t *timer) { return (uv_handle_t *)timer; }
static inline uv_handle_t *downpour_async_as_handle(uv_async_t *async) { return (uv_handle_t *)async; }
static inline uv_handle_t *downpour_signal_as_handle(uv_signal_t *signal) { return (uv_handle_t *)signal; }
static inline uv_handle_t *downpour_check_as_handle(uv_check_t *check) { return (uv_handle_t *)check; }
static inline uv_handle_t *downpour_prepare_as_handle(uv_prepare_t *prepare) { return (uv_handle_t *)prepare; }
/// Any handle type (uv_timer_t, uv_signal_t, ...) as the uv_handle_t it begins with.
static inline uv_handle_t *downpour_as_handle(void *handle) { return (uv_handle_t *)handle; }
static inline uv_req_t *downpour_getaddrinfo_as_req(uv_getaddrinfo_t *req) { return (uv_req_t *)req; }

/// The data pointer of any handle, without a cast on the Swift side.
static inline void *downpour_handle_data(const uv_handle_t *handle) { return handle->data; }
static inline void *downpour_stream_data(const uv_stream_t *stream) { return stream->data; }

/// Whether a handle was already handed to uv_close.
static inline int downpour_handle_is_closing(const uv_handle_t *handle) { return uv_is_closing(handle); }

// MARK: Buffers

/// A uv_buf_t over `len` bytes at `base` (libuv wants `char *`, Swift has raw pointers).
static inline uv_buf_t downpour_buf(void *base, size_t len) {
    uv_buf_t buf;
    buf.base = (char *)base;
    buf.len = len;
    return buf;
}

static inline void *downpour_buf_base(const uv_buf_t *buf) { return buf->base; }
static inline void downpour_buf_set(uv_buf_t *buf, void *base, size_t len) {
    buf->base = (char *)base;
    buf->len = len;
}

// MARK: Socket addresses

/// The port of an IPv4 or IPv6 address in host byte order, or -1.
static inline int downpour_sockaddr_port(const struct sockaddr *addr) {
    if (addr->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)addr)->sin_port);
    if (addr->sa_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    return -1;
}

/// Sets the port of an IPv4 or IPv6 address (host byte order in).
static inline void downpour_sockaddr_set_port(struct sockaddr *addr, int port) {
    if (addr->sa_family == AF_INET) ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
    else if (addr->sa_family == AF_INET6) ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
}

/// The length of an IPv4 or IPv6 address structure.
static inline int downpour_sockaddr_len(const struct sockaddr *addr) {
    return addr->sa_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6) : (int)sizeof(struct sockaddr_in);
}

static inline const struct sockaddr *downpour_storage_as_sockaddr(const struct sockaddr_storage *storage) {
    return (const struct sockaddr *)storage;
}
static inline struct sockaddr *downpour_storage_as_mutable_sockaddr(struct sockaddr_storage *storage) {
    return (struct sockaddr *)storage;
}

/// Copies an address (from getaddrinfo, say) into storage the caller owns.
static inline void downpour_copy_sockaddr(struct sockaddr_storage *dst, const struct sockaddr *src) {
    memset(dst, 0, sizeof(*dst));
    memcpy(dst, src, (size_t)downpour_sockaddr_len(src));
}

#endif
