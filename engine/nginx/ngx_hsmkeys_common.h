/*
 * ngx_hsmkeys_common.h - what the http and stream hsmkeys modules share.
 *
 * Owns: the per-server settings (hsmkeys_* directives), their merge and
 * validation, opening libhsmkeys contexts at configuration time (so that
 * "nginx -t" reports token and configuration errors), attaching them to a
 * server's SSL_CTX, and the per-process key maintainers (the master
 * forgets the keys it derived at configuration time; each worker starts
 * libhsmkeys' maintainer thread, which does all token work there).
 *
 * Threat handled: a fleet that silently stops resuming.  Every error that
 * would leave a server issuing tickets under a key its peers cannot read
 * (no token, wrong URI, unsafe PIN file, nginx's own ticket keys configured
 * on the same server, tickets disabled) fails the configuration with an
 * EMERG message naming the directive, instead of a fallback to random
 * local keys.  No PIN or key byte ever reaches a log: messages carry the
 * directive, its file:line and libhsmkeys' one-line error.
 */

#ifndef _NGX_HSMKEYS_COMMON_H_INCLUDED_
#define _NGX_HSMKEYS_COMMON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hsmkeys/hsmkeys.h>
#include <hsmkeys/hsmkeys_ssl.h>


/* Settings of one server{} (http or stream). */
typedef struct {
    ngx_flag_t       enable;        /* hsmkeys_tickets on|off       [off] */
    ngx_str_t        uri;           /* hsmkeys_uri "pkcs11:..."          */
    ngx_str_t        domain;        /* hsmkeys_domain NAME               */
    ngx_str_t        module_args;   /* hsmkeys_module_args "..."  [none] */
    time_t           epoch;         /* hsmkeys_epoch 1h                  */
    time_t           lifetime;      /* hsmkeys_lifetime 2h               */
    ngx_flag_t       forward_erasable; /* hsmkeys_forward_erasable  [off] */

    u_char          *file;          /* where hsmkeys_tickets was set */
    ngx_uint_t       line;

    void            *session_cache; /* hsmkeys_session_cache: an sc_store
                                       (ngx_hsmkeys_sesscache.c) [off] */
    u_char          *session_cache_file;
    ngx_uint_t       session_cache_line;
    hsmkeys_ctx     *hk;            /* attached to this server's SSL_CTX;
                                       NULL: off, or no TLS */
} ngx_hsmkeys_srv_conf_t;


/* One opened libhsmkeys context, shared by the servers whose settings are
 * identical (one token login per distinct setting, not per server). */
typedef struct {
    ngx_str_t        uri;
    ngx_str_t        domain;
    ngx_str_t        module_args;
    time_t           epoch;
    time_t           lifetime;
    ngx_flag_t       session_cache; /* opened with session-cache=yes */
    ngx_flag_t       forward_erasable;
    hsmkeys_ctx     *hk;
} ngx_hsmkeys_opened_t;


/* Per module and cycle (http{} or stream{}). */
typedef struct {
    ngx_array_t      opened;        /* of ngx_hsmkeys_opened_t */
} ngx_hsmkeys_main_conf_t;


/* What the module needs to know of the server's TLS configuration; filled
 * from ngx_http_ssl_srv_conf_t or ngx_stream_ssl_conf_t. */
typedef struct {
    SSL_CTX         *ctx;                  /* NULL: the server has no TLS */
    ngx_flag_t       session_tickets;      /* ssl_session_tickets */
    ngx_array_t     *session_ticket_keys;  /* ssl_session_ticket_key */
    ngx_array_t     *certificates;         /* ssl_certificate */
} ngx_hsmkeys_ssl_view_t;


void *ngx_hsmkeys_create_main_conf(ngx_conf_t *cf);
void *ngx_hsmkeys_create_srv_conf(ngx_conf_t *cf);

/* Directive handler of hsmkeys_tickets: records where it was set. */
char *ngx_hsmkeys_set_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* Merge prev into conf, then validate and, when enabled on a TLS server,
 * open (or reuse) the context and attach it to ssl->ctx. */
char *ngx_hsmkeys_merge_and_attach(ngx_conf_t *cf,
    ngx_hsmkeys_main_conf_t *mcf, ngx_hsmkeys_srv_conf_t *prev,
    ngx_hsmkeys_srv_conf_t *conf, ngx_hsmkeys_ssl_view_t *ssl,
    const char *module_name);

/* init_module, in the master after every configuration load (start,
 * reload, binary upgrade, "nginx -t"): wipe the keys the contexts derived
 * while the configuration was checked (hsmkeys_forget). */
ngx_int_t ngx_hsmkeys_init_module(ngx_cycle_t *cycle,
    ngx_hsmkeys_main_conf_t *mcf);

/* init_process, in each worker: start every context's key maintainer
 * (hsmkeys_start) and wait at most 1 s for its first keys; a token that
 * does not answer in time gets a warning naming the domain, and the worker
 * serves with full handshakes until the maintainer has the keys. */
ngx_int_t ngx_hsmkeys_init_worker(ngx_cycle_t *cycle,
    ngx_hsmkeys_main_conf_t *mcf);


#endif /* _NGX_HSMKEYS_COMMON_H_INCLUDED_ */
