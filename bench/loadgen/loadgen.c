/*
 * loadgen: the bench's HTTP/1.1 load generator, in C so that it is faster than the proxies it
 * measures (the Node client it replaces saturated its core before our proxy or squid did).
 *
 * Design
 *   - One thread, one epoll loop (edge-triggered), non-blocking sockets: like `wrk -t1`, it
 *     uses one core, and the harness pins it to the load core.
 *   - Every connection is a small state machine: TCP connect -> [CONNECT request -> 200]
 *     -> [TLS handshake (OpenSSL, SNI, ALPN http/1.1, verified against --ca)] -> idle
 *     -> write request -> read response -> ...  A connection has at most one request in
 *     flight (no pipelining); the response is read in full (Content-Length, chunked, or until
 *     the server closes) before the next request is written on it.
 *   - Closed loop (default): each connection sends its next request as soon as the previous
 *     answer has been read. Latency runs from the moment the request is started (with
 *     --new-connection, from the moment the connection is opened: the opening is included).
 *   - Open loop (--rate R): R requests/s in total; connection i sends at t0 + (i + k*C)/R
 *     (k = 0, 1, ...), the connections' schedules interleaved. Latency runs from the INTENDED
 *     send time: if the connection is still busy with the previous answer when its next
 *     request is due, the request waits and the wait is part of its latency (no coordinated
 *     omission, as in wrk2). The requests counted are those intended inside the measured
 *     window; after it the run goes on (up to --timeout more) until they are answered, so
 *     `seconds` grows and `rps` falls below the rate when the server cannot keep up; those
 *     still unanswered then are reported as `unfinished`.
 *   - "measuring" and "measured" lines on stderr mark the measured window, for a harness
 *     that samples the server's CPU over exactly that time.
 *   - --new-connection: every request on a new connection (CONNECT + handshake each time),
 *     SNI and Host cycling through --names; `{name}` in --connect and --authority stands for
 *     the current name.
 *   - Every latency sample of the measured window is kept (8 bytes each) and sorted at the
 *     end: exact percentiles. The client's own CPU time (getrusage, user + system) over the
 *     measured window is reported, so a saturated client (~100% of its core) is visible.
 *   - A server closing a kept-alive connection before any byte of the next answer
 *     (`Connection: close`, or an idle close) is not an error: the request is sent again on a
 *     new connection and `closed_connections` counts it.
 *
 * Usage (see --help):
 *   loadgen --port 8443 --tls --ca ca.pem --authority localhost --path /1k -c 50 -d 4
 *   loadgen --port 3128 --connect localhost:8443 --tls --ca ca.pem --authority localhost ...
 *   loadgen --port 3128 --path http://127.0.0.1:8080/1k --authority 127.0.0.1:8080 ...  (forward)
 *   loadgen ... --rate 5000 --warmup 1           (open loop)
 *
 * Output: one JSON object on stdout (see print_result). Exit status 0 unless the options are
 * wrong or the TLS context cannot be set up.
 *
 * Build: gcc -O2 -o loadgen loadgen.c -lssl -lcrypto   (or `make` in this directory)
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUFFER 65536
#define MAX_EVENTS 256
#define BACKOFF_NS 20000000ULL /* wait after a failure before reconnecting (as the Node client did) */
#define MAX_SAMPLES_KEPT 3

/* ---------------------------------------------------------------- options */

struct options {
  const char *host;
  int port;
  const char *connect_target; /* "host:port" for CONNECT, may hold {name} */
  int tls;
  const char *ca_file;
  int insecure;
  char **names;
  int name_count;
  const char *path; /* origin-form path, or an absolute URL for a forward proxy */
  const char *authority; /* Host header, may hold {name} */
  char *extra_headers; /* "Name: value\r\n" lines */
  int connections;
  double duration_s;
  double warmup_s;
  double rate; /* 0: closed loop */
  int new_connection;
  double timeout_s;
};

static struct options opt = {
    .host = "127.0.0.1",
    .path = "/",
    .connections = 10,
    .duration_s = 4,
    .timeout_s = 5,
};

/* What differs per SNI name: the request bytes, the CONNECT bytes and the TLS server name. */
struct target {
  char *request;
  size_t request_len;
  char *connect_request;
  size_t connect_len;
  char *server_name;
  int server_name_is_ip;
};

static struct target *targets;

/* ---------------------------------------------------------------- statistics */

enum error_kind { E_CONNECT, E_PROXY, E_TLS, E_WRITE, E_READ, E_PARSE, E_TIMEOUT, E_KINDS };
static const char *error_names[E_KINDS] = {"connect", "proxy", "tls", "write", "read", "parse", "timeout"};

static struct {
  int measuring;
  uint64_t requests;
  uint64_t non2xx;
  uint64_t errors[E_KINDS];
  uint64_t closed_connections;
  uint64_t connections_opened;
  uint64_t *latencies_ns;
  size_t latency_count, latency_cap;
  char *samples[MAX_SAMPLES_KEPT];
  int sample_count;
} stats;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void record_latency(uint64_t ns) {
  if (stats.latency_count == stats.latency_cap) {
    stats.latency_cap = stats.latency_cap == 0 ? 65536 : stats.latency_cap * 2;
    stats.latencies_ns = realloc(stats.latencies_ns, stats.latency_cap * sizeof(uint64_t));
    if (stats.latencies_ns == NULL) {
      perror("realloc");
      exit(2);
    }
  }
  stats.latencies_ns[stats.latency_count++] = ns;
}

/* Keeps the first few distinct error messages, as the Node client's error_samples did. */
static void remember_error(enum error_kind kind, const char *message) {
  char line[256];
  snprintf(line, sizeof line, "%s: %s", error_names[kind], message);
  for (int i = 0; i < stats.sample_count; i++)
    if (strcmp(stats.samples[i], line) == 0) return;
  if (stats.sample_count < MAX_SAMPLES_KEPT) stats.samples[stats.sample_count++] = strdup(line);
}

/* ---------------------------------------------------------------- connections */

enum state {
  S_CLOSED,      /* no socket; waiting for the next request (new-connection open loop) */
  S_BACKOFF,     /* no socket; after a failure, until wake_at */
  S_CONNECTING,  /* TCP connect in progress */
  S_PROXY_WRITE, /* sending CONNECT */
  S_PROXY_READ,  /* reading the CONNECT answer */
  S_HANDSHAKE,   /* TLS handshake */
  S_IDLE,        /* open and ready; waiting for the next intended send time */
  S_WRITE,       /* writing the request */
  S_READ,        /* reading the response */
};

enum parse_state { P_HEAD, P_BODY, P_CHUNK_SIZE, P_CHUNK_DATA, P_TRAILER, P_UNTIL_CLOSE };

struct conn {
  int index;
  int fd;
  SSL *ssl;
  enum state state;
  int connect_pending; /* connect() returned EINPROGRESS and no writable event yet */
  unsigned name_index; /* advances on every open */
  const struct target *target;
  int served; /* responses read on the current socket */

  /* the request in flight (a "cycle": from its start to its complete answer) */
  int in_cycle;
  uint64_t started_at; /* latency origin: intended (open loop) or actual start */
  uint64_t deadline;
  uint64_t wake_at; /* end of a backoff */
  uint64_t sends; /* open loop: requests scheduled so far on this connection */
  uint64_t next_send; /* open loop: intended time of the next request */

  /* writing */
  const char *wbuf;
  size_t wlen, woff;

  /* reading and parsing */
  char rbuf[READ_BUFFER];
  size_t rlen;
  size_t response_bytes; /* bytes of the current response seen so far */
  enum parse_state parse;
  uint64_t remaining;
  int status;
  int close_after; /* the response said Connection: close */
};

static struct conn *conns;
static int epoll_fd;
static SSL_CTX *ssl_ctx;
static struct sockaddr_in server_addr;

static void close_socket(struct conn *c) {
  if (c->ssl != NULL) {
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  if (c->fd >= 0) {
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
  }
  c->rlen = 0;
  c->served = 0;
}

static uint64_t loop_start; /* t0 of the open-loop schedule */
static uint64_t measure_at, end_at; /* the measured window */

/*
 * Whether the answer just read counts. Closed loop: answers that arrive inside the window.
 * Open loop: requests INTENDED inside the window, however late their answer (the run goes on
 * after the window until they are answered, so a backlog shows in latency and rate).
 */
static int counts(const struct conn *c) {
  if (opt.rate <= 0) return stats.measuring;
  return c->started_at >= measure_at && c->started_at < end_at;
}

/* Open loop: requests intended at or after the window's end are not sent. */
static int may_send(const struct conn *c) { return c->next_send < end_at; }

/* Open loop: the intended time of this connection's k-th request, (index + k*C) / rate after t0. */
static uint64_t slot_time(const struct conn *c, uint64_t k) {
  double seq = (double)c->index + (double)k * opt.connections;
  return loop_start + (uint64_t)(seq * 1e9 / opt.rate);
}

static void set_next_send(struct conn *c) { c->next_send = slot_time(c, c->sends); }

/* Open loop: the current request's slot is used (answered or failed); move to the next one. */
static void advance_schedule(struct conn *c) {
  c->sends++;
  set_next_send(c);
}

static void fail(struct conn *c, enum error_kind kind, const char *message) {
  if (stats.measuring) {
    stats.errors[kind]++;
    remember_error(kind, message);
  }
  close_socket(c);
  if (c->in_cycle && opt.rate > 0) advance_schedule(c);
  c->in_cycle = 0;
  c->state = S_BACKOFF;
  c->wake_at = now_ns() + BACKOFF_NS;
}

static const char *ssl_error_text(void) {
  static char buf[200];
  unsigned long e = ERR_get_error();
  if (e == 0) return errno != 0 ? strerror(errno) : "connection closed";
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

/* Opens a new socket; the state machine continues from S_CONNECTING. */
static void open_socket(struct conn *c) {
  c->target = &targets[c->name_index++ % (unsigned)opt.name_count];
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    fail(c, E_CONNECT, strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (stats.measuring) stats.connections_opened++;
  int rc = connect(c->fd, (struct sockaddr *)&server_addr, sizeof server_addr);
  if (rc < 0 && errno != EINPROGRESS) {
    fail(c, E_CONNECT, strerror(errno));
    return;
  }
  c->connect_pending = rc < 0;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
    fail(c, E_CONNECT, strerror(errno));
    return;
  }
  c->state = S_CONNECTING;
  c->served = 0;
}

static void start_write(struct conn *c) {
  c->wbuf = c->target->request;
  c->wlen = c->target->request_len;
  c->woff = 0;
  c->parse = P_HEAD;
  c->response_bytes = 0;
  c->close_after = 0;
  c->state = S_WRITE;
}

/* Starts a request whose latency counts from `origin`; the caller then drives the state machine. */
static void begin_cycle(struct conn *c, uint64_t origin, uint64_t now) {
  c->in_cycle = 1;
  c->started_at = origin;
  c->deadline = now + (uint64_t)(opt.timeout_s * 1e9);
  if (c->state == S_CLOSED || c->state == S_BACKOFF)
    open_socket(c);
  else if (c->state == S_IDLE)
    start_write(c);
  /* else the socket is still opening: the request is written once it is ready */
}

/* The socket is open (and tunnelled, and TLS is up): write the pending request or wait. */
static void socket_ready(struct conn *c) {
  if (c->in_cycle)
    start_write(c);
  else
    c->state = S_IDLE;
}

static void start_tls(struct conn *c) {
  c->ssl = SSL_new(ssl_ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
    fail(c, E_TLS, ssl_error_text());
    return;
  }
  const char *name = c->target->server_name;
  if (!c->target->server_name_is_ip) SSL_set_tlsext_host_name(c->ssl, name);
  if (!opt.insecure) {
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    if (c->target->server_name_is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(param, name);
    else
      SSL_set1_host(c->ssl, name);
  }
  c->state = S_HANDSHAKE;
}

/* A complete answer: record it, then close, reuse or wait according to the mode. */
static void response_done(struct conn *c, uint64_t now) {
  if (counts(c)) {
    stats.requests++;
    if (c->status < 200 || c->status > 299) stats.non2xx++;
    record_latency(now - c->started_at);
  }
  c->in_cycle = 0;
  c->served++;
  c->rlen = 0;
  if (opt.new_connection || c->close_after || c->parse == P_UNTIL_CLOSE) {
    if (!opt.new_connection && stats.measuring) stats.closed_connections++;
    close_socket(c);
    c->state = S_CLOSED;
  } else {
    c->state = S_IDLE;
  }
  if (opt.rate <= 0) {
    begin_cycle(c, now, now);
    return;
  }
  advance_schedule(c);
  if (!may_send(c)) return;
  if (c->next_send <= now)
    begin_cycle(c, c->next_send, now); /* late: the wait counts in its latency */
  else if (c->state == S_CLOSED && !opt.new_connection)
    open_socket(c); /* reopen now so the next request finds the connection ready */
}

/* ---------------------------------------------------------------- HTTP/1.1 response parser */

static int header_is(const char *line, size_t len, const char *name) {
  size_t n = strlen(name);
  return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int value_has(const char *line, size_t len, const char *token) {
  size_t n = strlen(token);
  for (size_t i = 0; i + n <= len; i++)
    if (strncasecmp(line + i, token, n) == 0) return 1;
  return 0;
}

/* Parses the status line and the fields; sets how the body is delimited. 0, or -1 if malformed. */
static int parse_head(struct conn *c, const char *head, size_t len) {
  if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0) return -1;
  c->status = atoi(head + 9);
  int has_length = 0, chunked = 0;
  uint64_t length = 0;
  const char *line = memchr(head, '\n', len);
  while (line != NULL && (size_t)(line - head) < len) {
    line++;
    const char *end = memchr(line, '\r', len - (size_t)(line - head));
    size_t n = end == NULL ? len - (size_t)(line - head) : (size_t)(end - line);
    if (header_is(line, n, "content-length")) {
      has_length = 1;
      length = strtoull(line + 15, NULL, 10);
    } else if (header_is(line, n, "transfer-encoding")) {
      chunked = value_has(line, n, "chunked");
    } else if (header_is(line, n, "connection")) {
      if (value_has(line, n, "close")) c->close_after = 1;
    }
    line = memchr(line, '\n', len - (size_t)(line - head));
  }
  if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
    c->parse = P_BODY;
    c->remaining = 0;
  } else if (chunked) {
    c->parse = P_CHUNK_SIZE;
  } else if (has_length) {
    c->parse = P_BODY;
    c->remaining = length;
  } else {
    c->parse = P_UNTIL_CLOSE;
  }
  return 0;
}

/*
 * Consumes what is in rbuf. Returns 1 when the response is complete, 0 when more bytes are
 * needed, -1 on a malformed response. Body bytes are counted and dropped; only a head or a
 * chunk-size line that is not complete yet stays in the buffer.
 */
static int parse_response(struct conn *c) {
  size_t off = 0;
  int result = 0;
  for (;;) {
    char *p = c->rbuf + off;
    size_t avail = c->rlen - off;
    if (c->parse == P_HEAD) {
      char *end = memmem(p, avail, "\r\n\r\n", 4);
      if (end == NULL) {
        if (c->rlen == READ_BUFFER) result = -1;
        break;
      }
      size_t head_len = (size_t)(end - p);
      if (parse_head(c, p, head_len) < 0) {
        result = -1;
        break;
      }
      off += head_len + 4;
      if (c->status >= 100 && c->status < 200 && c->status != 101) {
        c->parse = P_HEAD; /* interim answer: the real one follows */
        continue;
      }
    } else if (c->parse == P_BODY) {
      uint64_t take = avail < c->remaining ? avail : c->remaining;
      off += take;
      c->remaining -= take;
      if (c->remaining == 0) {
        result = 1;
        break;
      }
      if (avail == 0) break;
    } else if (c->parse == P_CHUNK_SIZE) {
      char *end = memmem(p, avail, "\r\n", 2);
      if (end == NULL) break;
      char *stop;
      uint64_t size = strtoull(p, &stop, 16);
      if (stop == p) {
        result = -1;
        break;
      }
      off += (size_t)(end - p) + 2;
      if (size == 0) {
        c->parse = P_TRAILER;
      } else {
        c->parse = P_CHUNK_DATA;
        c->remaining = size + 2; /* the data and its CRLF */
      }
    } else if (c->parse == P_CHUNK_DATA) {
      uint64_t take = avail < c->remaining ? avail : c->remaining;
      off += take;
      c->remaining -= take;
      if (c->remaining == 0)
        c->parse = P_CHUNK_SIZE;
      else
        break;
    } else if (c->parse == P_TRAILER) {
      char *end = memmem(p, avail, "\r\n", 2);
      if (end == NULL) break;
      off += (size_t)(end - p) + 2;
      if (end == p) {
        result = 1;
        break;
      }
    } else { /* P_UNTIL_CLOSE: complete when the server closes */
      off = c->rlen;
      break;
    }
  }
  memmove(c->rbuf, c->rbuf + off, c->rlen - off);
  c->rlen -= off;
  return result;
}

/* ---------------------------------------------------------------- I/O */

/* Reads into rbuf. >0 bytes read, 0 end of stream, -1 would block, -2 error. */
static ssize_t read_some(struct conn *c) {
  size_t room = READ_BUFFER - c->rlen;
  if (room == 0) return -2;
  if (c->ssl == NULL) {
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, room, 0);
    if (n > 0) return n;
    if (n == 0) return 0;
    return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : -2;
  }
  errno = 0;
  int n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)room);
  if (n > 0) return n;
  int err = SSL_get_error(c->ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return -1;
  if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0)) return 0;
  return -2;
}

/* Writes from wbuf. 1 when all is written, 0 would block, -1 error. */
static int write_some(struct conn *c, int raw) {
  while (c->woff < c->wlen) {
    ssize_t n;
    if (raw || c->ssl == NULL) {
      n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    } else {
      n = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
      if (n <= 0) {
        int err = SSL_get_error(c->ssl, (int)n);
        return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? 0 : -1;
      }
    }
    c->woff += (size_t)n;
  }
  return 1;
}

/* Advances the connection's state machine until it has to wait for the network or a timer. */
static void drive(struct conn *c) {
  for (;;) {
    switch (c->state) {
      case S_CLOSED:
      case S_BACKOFF:
      case S_IDLE:
        return;

      case S_CONNECTING: {
        if (c->connect_pending) return; /* the writable event clears it */
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
          fail(c, E_CONNECT, strerror(err != 0 ? err : errno));
          return;
        }
        if (opt.connect_target != NULL) {
          c->wbuf = c->target->connect_request;
          c->wlen = c->target->connect_len;
          c->woff = 0;
          c->state = S_PROXY_WRITE;
        } else if (opt.tls) {
          start_tls(c);
        } else {
          socket_ready(c);
        }
        break;
      }

      case S_PROXY_WRITE: {
        int w = write_some(c, 1);
        if (w < 0) {
          fail(c, E_PROXY, strerror(errno));
          return;
        }
        if (w == 0) return;
        c->rlen = 0;
        c->state = S_PROXY_READ;
        break;
      }

      case S_PROXY_READ: {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, READ_BUFFER - c->rlen, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
          fail(c, E_PROXY, n == 0 ? "proxy closed the connection during CONNECT" : strerror(errno));
          return;
        }
        c->rlen += (size_t)n;
        char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (end == NULL) {
          if (c->rlen == READ_BUFFER) {
            fail(c, E_PROXY, "CONNECT answer too large");
            return;
          }
          break;
        }
        if (c->rlen < 12 || strncmp(c->rbuf + 9, "200", 3) != 0) {
          char msg[64];
          snprintf(msg, sizeof msg, "CONNECT answered %.3s", c->rlen >= 12 ? c->rbuf + 9 : "???");
          fail(c, E_PROXY, msg);
          return;
        }
        c->rlen = 0; /* nothing follows a 200 until the client speaks */
        if (opt.tls)
          start_tls(c);
        else
          socket_ready(c);
        break;
      }

      case S_HANDSHAKE: {
        errno = 0;
        int r = SSL_connect(c->ssl);
        if (r == 1) {
          socket_ready(c);
          break;
        }
        int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
        fail(c, E_TLS, ssl_error_text());
        return;
      }

      case S_WRITE: {
        int w = write_some(c, 0);
        if (w < 0) {
          if (c->served > 0) { /* the server closed a kept-alive connection: send again */
            if (stats.measuring) stats.closed_connections++;
            close_socket(c);
            c->state = S_CLOSED;
            open_socket(c);
            break;
          }
          fail(c, E_WRITE, c->ssl != NULL ? ssl_error_text() : strerror(errno));
          return;
        }
        if (w == 0) return;
        c->state = S_READ;
        break;
      }

      case S_READ: {
        ssize_t n = read_some(c);
        if (n == -1) return;
        if (n == 0 && c->parse == P_UNTIL_CLOSE) {
          response_done(c, now_ns());
          break;
        }
        if (n <= 0 && c->response_bytes == 0 && c->served > 0) {
          /* the server closed (or reset) a kept-alive connection as our request went out: send again */
          if (stats.measuring) stats.closed_connections++;
          ERR_clear_error();
          close_socket(c);
          c->state = S_CLOSED;
          open_socket(c);
          break;
        }
        if (n == -2) {
          fail(c, E_READ, c->ssl != NULL ? ssl_error_text() : strerror(errno));
          return;
        }
        if (n == 0) {
          fail(c, E_READ, "connection closed before the answer was complete");
          return;
        }
        c->rlen += (size_t)n;
        c->response_bytes += (size_t)n;
        int p = parse_response(c);
        if (p < 0) {
          fail(c, E_PARSE, "malformed response");
          return;
        }
        if (p == 1) response_done(c, now_ns());
        break;
      }
    }
  }
}

/* ---------------------------------------------------------------- timers and the loop */

/* Fires what is due (backoffs, open-loop sends, timeouts); returns the next due time. */
static uint64_t run_timers(uint64_t now, uint64_t horizon) {
  uint64_t next = horizon;
  for (int i = 0; i < opt.connections; i++) {
    struct conn *c = &conns[i];
    if (c->state == S_BACKOFF) {
      if (now >= c->wake_at) {
        c->state = S_CLOSED;
        if (opt.rate <= 0)
          begin_cycle(c, now, now);
        else if (!opt.new_connection)
          open_socket(c);
        drive(c);
      } else if (c->wake_at < next) {
        next = c->wake_at;
        continue;
      }
    }
    if (c->in_cycle && c->state != S_BACKOFF) {
      if (now >= c->deadline) {
        fail(c, E_TIMEOUT, "no complete answer within the timeout");
        if (c->wake_at < next) next = c->wake_at;
        continue;
      }
      if (c->deadline < next) next = c->deadline;
    }
    if (opt.rate > 0 && !c->in_cycle && c->state != S_BACKOFF && may_send(c)) {
      if (now >= c->next_send) {
        begin_cycle(c, c->next_send, now);
        drive(c);
        if (c->in_cycle && c->deadline < next) next = c->deadline;
      } else if (c->next_send < next) {
        next = c->next_send;
      }
    }
  }
  return next;
}

static void wait_events(uint64_t until) {
  struct epoll_event events[MAX_EVENTS];
  uint64_t now = now_ns();
  uint64_t wait = until > now ? until - now : 0;
  struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ULL), .tv_nsec = (long)(wait % 1000000000ULL)};
  int n = epoll_pwait2(epoll_fd, events, MAX_EVENTS, &ts, NULL);
  if (n < 0 && errno == ENOSYS) /* kernels before 5.11: millisecond timeouts, rounded up */
    n = epoll_wait(epoll_fd, events, MAX_EVENTS, (int)((wait + 999999) / 1000000));
  for (int i = 0; i < n; i++) {
    struct conn *c = events[i].data.ptr;
    if (c->state == S_CONNECTING && (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) c->connect_pending = 0;
    drive(c);
  }
}

/*
 * Open loop, after the window: whether a request intended inside it is still unanswered (in
 * flight, or not sent yet because its connection was busy). A connection's current slot
 * (`sends`) is the request in flight or the next to send; earlier slots are done.
 */
static int window_pending(void) {
  for (int i = 0; i < opt.connections; i++)
    if (conns[i].next_send < end_at) return 1;
  return 0;
}

/* Open loop, when the run stops: how many requests intended inside the window are unanswered. */
static uint64_t window_unfinished(void) {
  uint64_t count = 0;
  for (int i = 0; i < opt.connections; i++)
    for (uint64_t k = conns[i].sends; slot_time(&conns[i], k) < end_at; k++) count++;
  return count;
}

/*
 * Writes `what` as a line on stderr when the measured window starts ("measuring") and ends
 * ("measured"), so that a harness can sample the server's CPU over exactly that window.
 */
static void mark(const char *what) { fprintf(stderr, "%s\n", what); }

/* ---------------------------------------------------------------- setup and output */

static char *replace_name(const char *pattern, const char *name) {
  const char *at = strstr(pattern, "{name}");
  if (at == NULL) return strdup(pattern);
  char *out;
  if (asprintf(&out, "%.*s%s%s", (int)(at - pattern), pattern, name, at + 6) < 0) exit(2);
  return out;
}

static void build_targets(void) {
  targets = calloc((size_t)opt.name_count, sizeof *targets);
  for (int i = 0; i < opt.name_count; i++) {
    struct target *t = &targets[i];
    char *authority = replace_name(opt.authority, opt.names[i]);
    if (asprintf(&t->request, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: proxy-bench\r\nAccept: */*\r\n%s\r\n", opt.path, authority,
                 opt.extra_headers == NULL ? "" : opt.extra_headers) < 0)
      exit(2);
    t->request_len = strlen(t->request);
    if (opt.connect_target != NULL) {
      char *target = replace_name(opt.connect_target, opt.names[i]);
      if (asprintf(&t->connect_request, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target) < 0) exit(2);
      t->connect_len = strlen(t->connect_request);
      free(target);
    }
    t->server_name = strdup(opt.names[i]);
    struct in_addr a4;
    struct in6_addr a6;
    t->server_name_is_ip = inet_pton(AF_INET, t->server_name, &a4) == 1 || inet_pton(AF_INET6, t->server_name, &a6) == 1;
    free(authority);
  }
}

static void setup_tls(void) {
  ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (ssl_ctx == NULL) {
    fprintf(stderr, "loadgen: SSL_CTX_new: %s\n", ssl_error_text());
    exit(2);
  }
  SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF); /* every handshake is a full one */
  SSL_CTX_set_options(ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(ssl_ctx, alpn, sizeof alpn - 1);
  if (opt.insecure) {
    SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
    return;
  }
  SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
  int ok = opt.ca_file != NULL ? SSL_CTX_load_verify_locations(ssl_ctx, opt.ca_file, NULL) : SSL_CTX_set_default_verify_paths(ssl_ctx);
  if (ok != 1) {
    fprintf(stderr, "loadgen: cannot load CA %s: %s\n", opt.ca_file != NULL ? opt.ca_file : "(default)", ssl_error_text());
    exit(2);
  }
}

static int compare_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of the sorted samples, in microseconds; -1 when there is none. */
static double percentile_us(double p) {
  if (stats.latency_count == 0) return -1;
  size_t rank = (size_t)((p / 100.0) * (double)stats.latency_count + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > stats.latency_count) rank = stats.latency_count;
  return (double)stats.latencies_ns[rank - 1] / 1000.0;
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", *s);
    else
      putchar(*s);
  }
  putchar('"');
}

static void print_ms(const char *key, double us) {
  if (us < 0)
    printf("\"%s\":null,", key);
  else
    printf("\"%s\":%.3f,", key, us / 1000.0);
}

/*
 * One JSON object. Field names follow the Node client it replaces (requests, seconds, rps,
 * p50_ms, p99_ms, errors, non2xx, connections_opened, error_samples) plus: p90_ms, p999_ms,
 * max_ms (millisecond values with microsecond resolution), latency_us (the same in µs; null
 * without samples),
 * errors_by_kind, unfinished (open loop: requests of the window still unanswered when the run
 * stopped), closed_connections, target_rate (null in closed loop), client_cpu_seconds
 * and client_cpu_pct (user + system over the measured window, % of one core).
 */
static void print_result(double seconds, double cpu, uint64_t unfinished) {
  qsort(stats.latencies_ns, stats.latency_count, sizeof(uint64_t), compare_u64);
  double p50 = percentile_us(50), p90 = percentile_us(90), p99 = percentile_us(99), p999 = percentile_us(99.9), max = percentile_us(100);
  uint64_t errors = 0;
  for (int k = 0; k < E_KINDS; k++) errors += stats.errors[k];
  printf("{\"requests\":%llu,\"seconds\":%.6f,\"rps\":%.3f,", (unsigned long long)stats.requests, seconds, (double)stats.requests / seconds);
  if (opt.rate > 0)
    printf("\"target_rate\":%.3f,", opt.rate);
  else
    printf("\"target_rate\":null,");
  print_ms("p50_ms", p50);
  print_ms("p90_ms", p90);
  print_ms("p99_ms", p99);
  print_ms("p999_ms", p999);
  print_ms("max_ms", max);
  if (stats.latency_count == 0)
    printf("\"latency_us\":null,");
  else
    printf("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},", p50, p90, p99, p999, max);
  printf("\"errors\":%llu,\"errors_by_kind\":{", (unsigned long long)errors);
  for (int k = 0; k < E_KINDS; k++) printf("%s\"%s\":%llu", k == 0 ? "" : ",", error_names[k], (unsigned long long)stats.errors[k]);
  printf("},\"unfinished\":%llu,\"non2xx\":%llu,\"closed_connections\":%llu,\"connections_opened\":%llu,", (unsigned long long)unfinished, (unsigned long long)stats.non2xx,
         (unsigned long long)stats.closed_connections, (unsigned long long)stats.connections_opened);
  printf("\"client_cpu_seconds\":%.3f,\"client_cpu_pct\":%.1f,\"error_samples\":[", cpu, seconds > 0 ? cpu / seconds * 100 : 0);
  for (int i = 0; i < stats.sample_count; i++) {
    if (i > 0) putchar(',');
    print_json_string(stats.samples[i]);
  }
  printf("]}\n");
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: loadgen --port PORT [options]\n"
          "  --host IP            where TCP connections go (default 127.0.0.1): the origin or the proxy\n"
          "  --port PORT\n"
          "  --connect HOST:PORT  open a tunnel with CONNECT first ({name} = the current SNI name)\n"
          "  --tls                speak TLS to the origin (inside the tunnel with --connect)\n"
          "  --ca FILE            PEM bundle to verify the server against (default: system store)\n"
          "  --insecure           do not verify the server certificate\n"
          "  --names A,B,...      SNI names, one per new connection in turn (default: the host of --authority)\n"
          "  --path P             request target: /path, or http://host:port/path for a forward proxy (default /)\n"
          "  --authority A        Host header ({name} = the current SNI name; default HOST:PORT)\n"
          "  --header 'K: V'      an extra request header (repeatable)\n"
          "  -c, --connections N  concurrent connections (default 10)\n"
          "  -d, --duration S     measured seconds (default 4)\n"
          "  --warmup S           seconds run before measuring, not recorded (default 0)\n"
          "  --rate R             open loop: R requests/s in total, latency from the intended send time\n"
          "  --new-connection     a new connection (CONNECT + TLS handshake) for every request\n"
          "  --timeout S          a request without a complete answer after S seconds is an error (default 5)\n"
          "Prints one JSON object: requests, seconds, rps, target_rate, p50/p90/p99/p999/max_ms, latency_us,\n"
          "errors, errors_by_kind, unfinished, non2xx, closed_connections, connections_opened, client_cpu_seconds,\n"
          "client_cpu_pct, error_samples.\n");
}

static void parse_options(int argc, char **argv) {
  enum { O_HOST = 256, O_PORT, O_CONNECT, O_TLS, O_CA, O_INSECURE, O_NAMES, O_PATH, O_AUTHORITY, O_HEADER, O_WARMUP, O_RATE, O_NEWCONN, O_TIMEOUT };
  static const struct option long_options[] = {
      {"host", required_argument, 0, O_HOST},       {"port", required_argument, 0, O_PORT},
      {"connect", required_argument, 0, O_CONNECT}, {"tls", no_argument, 0, O_TLS},
      {"ca", required_argument, 0, O_CA},           {"insecure", no_argument, 0, O_INSECURE},
      {"names", required_argument, 0, O_NAMES},     {"path", required_argument, 0, O_PATH},
      {"authority", required_argument, 0, O_AUTHORITY}, {"header", required_argument, 0, O_HEADER},
      {"connections", required_argument, 0, 'c'},   {"duration", required_argument, 0, 'd'},
      {"warmup", required_argument, 0, O_WARMUP},   {"rate", required_argument, 0, O_RATE},
      {"new-connection", no_argument, 0, O_NEWCONN}, {"timeout", required_argument, 0, O_TIMEOUT},
      {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
  };
  const char *names = NULL;
  size_t headers_len = 0;
  int o;
  while ((o = getopt_long(argc, argv, "c:d:h", long_options, NULL)) != -1) {
    switch (o) {
      case O_HOST: opt.host = optarg; break;
      case O_PORT: opt.port = atoi(optarg); break;
      case O_CONNECT: opt.connect_target = optarg; break;
      case O_TLS: opt.tls = 1; break;
      case O_CA: opt.ca_file = optarg; break;
      case O_INSECURE: opt.insecure = 1; break;
      case O_NAMES: names = optarg; break;
      case O_PATH: opt.path = optarg; break;
      case O_AUTHORITY: opt.authority = optarg; break;
      case O_HEADER: {
        size_t n = strlen(optarg);
        opt.extra_headers = realloc(opt.extra_headers, headers_len + n + 3);
        memcpy(opt.extra_headers + headers_len, optarg, n);
        memcpy(opt.extra_headers + headers_len + n, "\r\n", 3);
        headers_len += n + 2;
        break;
      }
      case 'c': opt.connections = atoi(optarg); break;
      case 'd': opt.duration_s = atof(optarg); break;
      case O_WARMUP: opt.warmup_s = atof(optarg); break;
      case O_RATE: opt.rate = atof(optarg); break;
      case O_NEWCONN: opt.new_connection = 1; break;
      case O_TIMEOUT: opt.timeout_s = atof(optarg); break;
      case 'h': usage(stdout); exit(0);
      default: usage(stderr); exit(2);
    }
  }
  if (opt.port <= 0 || opt.connections <= 0 || opt.duration_s <= 0 || opt.rate < 0 || optind != argc) {
    usage(stderr);
    exit(2);
  }
  if (opt.authority == NULL) {
    char *a;
    if (asprintf(&a, "%s:%d", opt.host, opt.port) < 0) exit(2);
    opt.authority = a;
  }
  if (names == NULL) { /* the host part of the authority */
    const char *colon = strrchr(opt.authority, ':');
    names = colon == NULL || strchr(opt.authority, ']') > colon ? opt.authority : strndup(opt.authority, (size_t)(colon - opt.authority));
  }
  char *list = strdup(names);
  for (char *tok = strtok(list, ","); tok != NULL; tok = strtok(NULL, ",")) {
    opt.names = realloc(opt.names, (size_t)(opt.name_count + 1) * sizeof(char *));
    opt.names[opt.name_count++] = tok;
  }
  if (opt.name_count == 0) {
    usage(stderr);
    exit(2);
  }
}

int main(int argc, char **argv) {
  parse_options(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 µs: open-loop sends leave on time */
  server_addr.sin_family = AF_INET;
  server_addr.sin_port = htons((uint16_t)opt.port);
  if (inet_pton(AF_INET, opt.host, &server_addr.sin_addr) != 1) {
    fprintf(stderr, "loadgen: --host must be an IPv4 address\n");
    return 2;
  }
  if (opt.tls) setup_tls();
  build_targets();
  epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  conns = calloc((size_t)opt.connections, sizeof *conns);
  if (conns == NULL) return 2;

  uint64_t start = now_ns();
  loop_start = start;
  measure_at = start + (uint64_t)(opt.warmup_s * 1e9);
  end_at = measure_at + (uint64_t)(opt.duration_s * 1e9);
  stats.measuring = opt.warmup_s <= 0;
  if (stats.measuring) mark("measuring");
  for (int i = 0; i < opt.connections; i++) {
    struct conn *c = &conns[i];
    c->index = i;
    c->fd = -1;
    c->name_index = (unsigned)i;
    c->state = S_CLOSED;
    if (opt.rate > 0) {
      set_next_send(c);
      if (!opt.new_connection) open_socket(c); /* ready before its first intended send */
    } else {
      begin_cycle(c, start, start);
    }
    drive(c);
  }

  double cpu_at_measure = stats.measuring ? cpu_seconds() : 0;
  uint64_t drain_limit = end_at + (uint64_t)(opt.timeout_s * 1e9);
  for (;;) {
    uint64_t now = now_ns();
    if (now >= end_at && (opt.rate <= 0 || !window_pending() || now >= drain_limit)) break;
    if (!stats.measuring && now >= measure_at) {
      stats.measuring = 1;
      cpu_at_measure = cpu_seconds();
      mark("measuring");
    }
    uint64_t next = run_timers(now, stats.measuring ? (now < end_at ? end_at : drain_limit) : measure_at);
    wait_events(next);
  }
  double cpu = cpu_seconds() - cpu_at_measure;
  double seconds = (double)(now_ns() - measure_at) / 1e9;
  mark("measured");
  print_result(seconds, cpu, opt.rate > 0 ? window_unfinished() : 0);
  return 0;
}
