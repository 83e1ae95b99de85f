#ifndef DOWNPOUR_COPENSSL_SHIM_H
#define DOWNPOUR_COPENSSL_SHIM_H
// The one header through which Swift sees OpenSSL (3.0 or later). OpenSSL spells many of its calls as
// macros over SSL_ctrl and BIO_ctrl, which Swift cannot import; the static inline helpers below give
// those a function each, so the Swift side never passes raw control codes.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>

// MARK: Contexts

static inline int downpour_ssl_ctx_set_tls13_only(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) && SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
}

/// No session cache: Downpour's clients never resume, so a cache would only hold memory.
static inline void downpour_ssl_ctx_disable_session_cache(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

/// The server picks the cipher suite from its own preference list, not the client's.
static inline void downpour_ssl_ctx_prefer_server_ciphers(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
}

/// An encrypted private key must fail to load rather than prompt for a passphrase on the terminal
/// (which would block the caller): this callback supplies no passphrase.
static inline int downpour_no_passphrase(char *buf, int size, int rwflag, void *userdata) {
    (void)buf; (void)size; (void)rwflag; (void)userdata;
    return 0;
}

static inline void downpour_ssl_ctx_refuse_passphrases(SSL_CTX *ctx) {
    SSL_CTX_set_default_passwd_cb(ctx, downpour_no_passphrase);
}

// MARK: Connections

/// Sends `name` as the server name indication (SNI).
static inline int downpour_ssl_set_server_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/// Makes an empty memory BIO report "retry later" rather than end of file: more ciphertext may come.
static inline void downpour_bio_set_retry_when_empty(BIO *bio) {
    BIO_set_mem_eof_return(bio, -1);
}

// MARK: Errors and names

static inline int downpour_err_lib(unsigned long code) { return ERR_GET_LIB(code); }
static inline int downpour_err_reason(unsigned long code) { return ERR_GET_REASON(code); }

/// Writes `name` in RFC 2253 form ("CN=worker-1,O=Downpour") into `bio`.
static inline int downpour_x509_name_print_rfc2253(BIO *bio, const X509_NAME *name) {
    return X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
}

/// The bytes of a memory BIO, without copying them out; returns their count.
static inline long downpour_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }

#endif
