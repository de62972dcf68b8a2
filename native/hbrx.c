/* hbrx: see hbrx.h. */
#define _GNU_SOURCE
#include "hbrx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BODY 64
#define MAC_LEN 32
#define FIRST_SEEN 16 /* heartbeats per sender whose first arrival is remembered (liveness.py) */
#define BATCH 16      /* datagrams per recvmmsg */
#define MAX_FUTILE 64 /* reads that failed or found nothing before hbrx_lan_wait returns */
#define MAX_STAMP_LAG 1.0 /* a receive stamp further off than that is not believed (lanhb.py) */

/* --- SHA-256 (FIPS 180-4) and HMAC ------------------------------------------------------ */

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
} sha256_state;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

static void sha256_init(sha256_state *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->bytes = 0;
}

/* msg continues a state that has absorbed whole blocks only; produces the digest. */
static void sha256_finish(sha256_state s, const unsigned char *msg, size_t len,
                          unsigned char out[32]) {
    unsigned char block[64];
    uint64_t total = (s.bytes + len) * 8;
    while (len >= 64) {
        sha256_block(s.h, msg);
        msg += 64;
        len -= 64;
    }
    memset(block, 0, sizeof block);
    memcpy(block, msg, len);
    block[len] = 0x80;
    if (len >= 56) {
        sha256_block(s.h, block);
        memset(block, 0, sizeof block);
    }
    for (int i = 0; i < 8; i++) block[63 - i] = (unsigned char)(total >> (8 * i));
    sha256_block(s.h, block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s.h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s.h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s.h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s.h[i];
    }
}

/* The inner and outer states of HMAC-SHA256 after the key block: each MAC then costs the
 * message's blocks and one more. */
typedef struct {
    sha256_state inner, outer;
} hmac_key;

static void hmac_prepare(hmac_key *hk, const unsigned char *key, size_t key_len) {
    unsigned char k[64], pad[64];
    memset(k, 0, sizeof k);
    if (key_len > 64) {
        sha256_state s;
        sha256_init(&s);
        sha256_finish(s, key, key_len, k);
    } else {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    sha256_init(&hk->inner);
    sha256_block(hk->inner.h, pad);
    hk->inner.bytes = 64;
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    sha256_init(&hk->outer);
    sha256_block(hk->outer.h, pad);
    hk->outer.bytes = 64;
}

static void hmac_compute(const hmac_key *hk, const unsigned char *msg, size_t len,
                         unsigned char out[32]) {
    unsigned char inner[32];
    sha256_finish(hk->inner, msg, len, inner);
    sha256_finish(hk->outer, inner, sizeof inner, out);
}

void hbrx_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
                      size_t len, unsigned char *out) {
    hmac_key hk;
    hmac_prepare(&hk, key, key_len);
    hmac_compute(&hk, msg, len, out);
}

/* --- the table ---------------------------------------------------------------------------- */

typedef struct {
    uint64_t inc, seq; /* the last record accepted: the replay guard */
    double wall;       /* when it was handled, on the wall clock */
    uint64_t received;
    int accepted;      /* inc/seq hold a record */
    int quiet;         /* set by the caller */
    /* the quiet records taken since the last pull (dirty): the last one's order, bitmaps and
     * arrival, and the latest moment they show the sender alive, each from its first arrival
     * on any path (a newer heartbeat can have first arrived earlier than an older one here).
     * A news record leaves them alone: the service takes it at once, they wait for the pull. */
    int dirty;
    uint64_t q_inc, q_seq;
    uint32_t q_heard, q_offline;
    double q_arrived, alive_at;
} entry;

typedef struct {
    int has_newest;
    uint64_t inc, seq; /* the newest heartbeat accepted from the sender, on any path */
    /* news records handed out and not yet acknowledged (hbrx_ack): while there are any,
     * every record of the sender is news, so that none is taken quietly before them */
    uint64_t outstanding;
    uint32_t heard, offline, state;
    struct {
        uint64_t inc, seq;
        double first;
        int used;
    } seen[FIRST_SEEN];
    int next_seen;
} sender_info;

typedef struct {
    int family; /* 0: unused */
    unsigned char addr[16];
    int sender;
} lan_peer;

typedef struct {
    uint32_t members;
    lan_peer peers[HBRX_MAX_SERVERS];
    double delays[HBRX_DELAYS];
    int n_delays, next_delay;
} path_info;

struct hbrx_table {
    pthread_mutex_t lock; /* every public function but hbrx_lan_wait's poll holds it */
    hmac_key key;
    uint64_t cluster_id;
    int me, n_servers, n_paths;
    entry *entries; /* [sender * n_paths + path] */
    sender_info senders[HBRX_MAX_SERVERS];
    path_info *paths;
};

static double clock_seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

hbrx_table *hbrx_new(const unsigned char *key, size_t key_len, uint64_t cluster_id,
                     int my_index, int n_servers, int n_paths) {
    if (n_servers < 1 || n_servers > HBRX_MAX_SERVERS || my_index < 0 || my_index >= n_servers ||
        n_paths < 1 || n_paths > 4096)
        return NULL;
    hbrx_table *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->entries = calloc((size_t)n_servers * (size_t)n_paths, sizeof *t->entries);
    t->paths = calloc((size_t)n_paths, sizeof *t->paths);
    if (t->entries == NULL || t->paths == NULL) {
        hbrx_free(t);
        return NULL;
    }
    hmac_prepare(&t->key, key, key_len);
    t->cluster_id = cluster_id;
    t->me = my_index;
    t->n_servers = n_servers;
    t->n_paths = n_paths;
    return t;
}

void hbrx_free(hbrx_table *t) {
    if (t == NULL) return;
    pthread_mutex_destroy(&t->lock);
    free(t->entries);
    free(t->paths);
    free(t);
}

int hbrx_set_members(hbrx_table *t, int path, uint32_t members) {
    if (path < 0 || path >= t->n_paths) return -EINVAL;
    pthread_mutex_lock(&t->lock);
    t->paths[path].members = members;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

int hbrx_set_quiet(hbrx_table *t, int sender, int path, int quiet) {
    if (sender < 0 || sender >= t->n_servers || path < 0 || path >= t->n_paths) return -EINVAL;
    pthread_mutex_lock(&t->lock);
    t->entries[sender * t->n_paths + path].quiet = quiet != 0;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static uint64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static double be_double(const unsigned char *p) {
    uint64_t v = be64(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

static int newer(uint64_t inc, uint64_t seq, uint64_t last_inc, uint64_t last_seq) {
    return inc > last_inc || (inc == last_inc && seq > last_seq);
}

/* When (inc, seq) of sender first arrived (remembering it as arriving now if it is new). */
static double first_seen(sender_info *s, uint64_t inc, uint64_t seq, double arrived) {
    for (int i = 0; i < FIRST_SEEN; i++)
        if (s->seen[i].used && s->seen[i].inc == inc && s->seen[i].seq == seq)
            return s->seen[i].first;
    int i = s->next_seen;
    s->next_seen = (i + 1) % FIRST_SEEN;
    s->seen[i].inc = inc;
    s->seen[i].seq = seq;
    s->seen[i].first = arrived;
    s->seen[i].used = 1;
    return arrived;
}

static int drop(hbrx_record *out, int reason) {
    out->kind = -reason;
    return -reason;
}

/* hbrx_ingest, the lock held and path checked */
static int ingest(hbrx_table *t, int path, const unsigned char *data, size_t len,
                  int expect_sender, double arrived, double now_wall, double max_late,
                  int count_stale, hbrx_record *out) {
    memset(out, 0, offsetof(hbrx_record, data));
    out->path = path;
    out->sender = -1;
    out->len = (uint32_t)len;
    out->arrived = arrived;
    out->now_wall = now_wall;
    memcpy(out->data, data, len < HBRX_PACKET ? len : HBRX_PACKET);
    if (len != HBRX_PACKET) return drop(out, HBRX_MALFORMED);
    const unsigned char *p = data;
    out->state = p[6];
    out->cluster_id = be64(p + 8);
    out->sender = (int32_t)(p[16] << 8 | p[17]);
    int pkt_path = p[18] << 8 | p[19];
    out->incarnation = be64(p + 24);
    out->seq = be64(p + 32);
    out->sent = be_double(p + 40);
    out->heard = be32(p + 48);
    out->offline = be32(p + 52);
    if (memcmp(p, "CLPH", 4) != 0 || p[4] != 2 || p[5] != 1) return drop(out, HBRX_MALFORMED);
    unsigned char mac[MAC_LEN];
    hmac_compute(&t->key, p, BODY, mac);
    unsigned char diff = 0;
    for (int i = 0; i < MAC_LEN; i++) diff |= mac[i] ^ p[BODY + i];
    if (diff != 0) return drop(out, HBRX_BAD_MAC);
    if (out->cluster_id != t->cluster_id) return drop(out, HBRX_UNKNOWN_CLUSTER);
    int sender = out->sender;
    if (pkt_path != path || sender == t->me || sender >= t->n_servers ||
        !(t->paths[path].members >> sender & 1) ||
        (expect_sender != -2 && sender != expect_sender))
        return drop(out, HBRX_UNKNOWN_SENDER);
    if (max_late > 0 && !(now_wall - out->sent <= max_late)) return drop(out, HBRX_LATE);
    entry *e = &t->entries[sender * t->n_paths + path];
    if (e->accepted && !newer(out->incarnation, out->seq, e->inc, e->seq)) {
        if (!count_stale) return HBRX_STALE;
        return drop(out, HBRX_REPLAY);
    }
    sender_info *s = &t->senders[sender];
    double first = first_seen(s, out->incarnation, out->seq, arrived);
    e->inc = out->incarnation;
    e->seq = out->seq;
    e->wall = now_wall;
    e->received++;
    e->accepted = 1;
    out->first = first;
    int news = !e->quiet || s->outstanding > 0;
    if (!s->has_newest || newer(out->incarnation, out->seq, s->inc, s->seq)) {
        if (!s->has_newest || s->inc != out->incarnation || s->heard != out->heard ||
            s->offline != out->offline || s->state != out->state ||
            (out->offline >> t->me & 1))
            news = 1;
        s->has_newest = 1;
        s->inc = out->incarnation;
        s->seq = out->seq;
        s->heard = out->heard;
        s->offline = out->offline;
        s->state = out->state;
    }
    if (news) {
        s->outstanding++;
    } else {
        double at = first < arrived ? first : arrived;
        if (!e->dirty || at > e->alive_at) e->alive_at = at;
        e->dirty = 1;
        e->q_inc = out->incarnation;
        e->q_seq = out->seq;
        e->q_heard = out->heard;
        e->q_offline = out->offline;
        e->q_arrived = arrived;
    }
    out->kind = news ? HBRX_NEWS : HBRX_QUIET;
    return out->kind;
}

int hbrx_ack(hbrx_table *t, int sender) {
    if (sender < 0 || sender >= t->n_servers) return -EINVAL;
    pthread_mutex_lock(&t->lock);
    sender_info *s = &t->senders[sender];
    if (s->outstanding > 0) s->outstanding--;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void hbrx_renew(hbrx_table *t) {
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < t->n_servers; i++) t->senders[i].has_newest = 0;
    pthread_mutex_unlock(&t->lock);
}

int hbrx_ingest(hbrx_table *t, int path, const unsigned char *data, size_t len,
                int expect_sender, double arrived, double now_wall, double max_late,
                int count_stale, hbrx_record *out) {
    if (path < 0 || path >= t->n_paths) return -EINVAL;
    pthread_mutex_lock(&t->lock);
    int k = ingest(t, path, data, len, expect_sender, arrived, now_wall, max_late, count_stale,
                   out);
    pthread_mutex_unlock(&t->lock);
    return k;
}

/* --- LAN ---------------------------------------------------------------------------------- */

int hbrx_lan_add_peer(hbrx_table *t, int path, int sender, const char *address) {
    if (path < 0 || path >= t->n_paths || sender < 0 || sender >= t->n_servers) return -EINVAL;
    lan_peer peer = {0};
    peer.sender = sender;
    char text[INET6_ADDRSTRLEN + 1];
    strncpy(text, address, sizeof text - 1);
    text[sizeof text - 1] = 0;
    char *scope = strchr(text, '%'); /* a scope names an interface; the address is the same */
    if (scope != NULL) *scope = 0;
    if (inet_pton(AF_INET, text, peer.addr) == 1)
        peer.family = AF_INET;
    else if (inet_pton(AF_INET6, text, peer.addr) == 1)
        peer.family = AF_INET6;
    else
        return -EINVAL;
    int rc = -ENOSPC;
    pthread_mutex_lock(&t->lock);
    lan_peer *peers = t->paths[path].peers;
    for (int i = 0; i < HBRX_MAX_SERVERS; i++) {
        if (peers[i].family == 0 || peers[i].sender == sender) {
            peers[i] = peer;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int hbrx_lan_prepare(int fd) {
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) return -errno;
    return 0;
}

/* The sender whose address src is on path, or -1; its text in source. */
static int lan_sender(const hbrx_table *t, int path, const struct sockaddr_storage *src,
                      char *source, size_t source_len) {
    const void *addr;
    size_t n;
    if (src->ss_family == AF_INET) {
        addr = &((const struct sockaddr_in *)src)->sin_addr;
        n = 4;
    } else if (src->ss_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)src)->sin6_addr;
        n = 16;
    } else {
        snprintf(source, source_len, "(address family %d)", src->ss_family);
        return -1;
    }
    if (inet_ntop(src->ss_family, addr, source, (socklen_t)source_len) == NULL) source[0] = 0;
    const lan_peer *peers = t->paths[path].peers;
    for (int i = 0; i < HBRX_MAX_SERVERS && peers[i].family != 0; i++)
        if (peers[i].family == src->ss_family && memcmp(peers[i].addr, addr, n) == 0)
            return peers[i].sender;
    return -1;
}

/* Read the datagrams waiting on fd (non-blocking) as records of path (checked by the caller);
 * at most max_out of them needing the caller (NEWS and drops) go to out, QUIET ones only update
 * the table. Returns how many are in out, or -errno when the first read failed (-EAGAIN:
 * nothing was waiting). */
static int lan_drain(hbrx_table *t, int fd, int path, hbrx_record *out, int max_out) {
    unsigned char bufs[BATCH][HBRX_PACKET + 1];
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(struct timespec))];
    } ctrl[BATCH];
    struct sockaddr_storage names[BATCH];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    int n_out = 0, n_read = 0;
    path_info *pi = &t->paths[path];
    while (n_out < max_out) {
        int want = max_out - n_out < BATCH ? max_out - n_out : BATCH;
        memset(msgs, 0, sizeof msgs);
        for (int i = 0; i < want; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = sizeof bufs[i];
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &names[i];
            msgs[i].msg_hdr.msg_namelen = sizeof names[i];
            msgs[i].msg_hdr.msg_control = ctrl[i].buf;
            msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i].buf;
        }
        int got = recvmmsg(fd, msgs, (unsigned int)want, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (got < 0) {
            int err = errno;
            if (n_read == 0) return -err;
            break; /* EAGAIN: all read; another error: the next call reports it */
        }
        n_read += got;
        pthread_mutex_lock(&t->lock);
        double now_wall = clock_seconds(CLOCK_REALTIME);
        double now_mono = clock_seconds(CLOCK_MONOTONIC);
        for (int i = 0; i < got; i++) {
            double arrived = now_mono, stamp_wall = now_wall;
            struct msghdr *h = &msgs[i].msg_hdr;
            for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
                    c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    double stamp = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
                    double lag = now_wall - stamp;
                    if (lag >= 0.0 && lag <= MAX_STAMP_LAG) {
                        arrived = now_mono - lag;
                        stamp_wall = stamp;
                    }
                }
            }
            hbrx_record *rec = &out[n_out];
            char source[sizeof rec->source];
            int sender = lan_sender(t, path, &names[i], source, sizeof source);
            /* MSG_TRUNC: the datagram's real size, which may exceed the buffer; ingest reads
             * at most HBRX_PACKET bytes of it (a bigger one is malformed) */
            int k = ingest(t, path, bufs[i], msgs[i].msg_len, sender, arrived, now_wall, 0.0, 1,
                           rec);
            if (k == HBRX_QUIET || k == HBRX_NEWS) {
                pi->delays[pi->next_delay] = stamp_wall - rec->sent;
                pi->next_delay = (pi->next_delay + 1) % HBRX_DELAYS;
                if (pi->n_delays < HBRX_DELAYS) pi->n_delays++;
            }
            if (k != HBRX_QUIET) {
                memcpy(rec->source, source, sizeof rec->source);
                n_out++;
            }
        }
        pthread_mutex_unlock(&t->lock);
        if (got < want) break; /* nothing more was waiting */
    }
    return n_out;
}

int hbrx_lan_wait(hbrx_table *t, int fd, int path, int wake_fd, int timeout_ms,
                  hbrx_record *out, int max_out, int *errors) {
    if (path < 0 || path >= t->n_paths) return -EINVAL;
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
    double deadline = clock_seconds(CLOCK_MONOTONIC) + timeout_ms / 1000.0;
    int idle = 0;
    *errors = 0;
    for (;;) { /* bounded by the deadline */
        int left = (int)((deadline - clock_seconds(CLOCK_MONOTONIC)) * 1000.0);
        if (left < 0) return 0;
        int r = poll(fds, 2, left);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return 0;
        if (fds[1].revents) {
            uint64_t v;
            if (read(wake_fd, &v, sizeof v) < 0 && errno != EAGAIN) return -errno;
            return 0;
        }
        if (fds[0].revents & POLLNVAL) return -EBADF;
        int n = lan_drain(t, fd, path, out, max_out);
        if (n == -EAGAIN) { /* readable, and then nothing to read: bounded like errors */
            if (++idle >= MAX_FUTILE) return 0;
            continue;
        }
        if (n < 0) {
            (*errors)++; /* an ICMP error reported by the read: counted, and on we go */
            if (*errors >= MAX_FUTILE) return 0;
            continue;
        }
        if (n > 0) return n;
    }
}

/* --- pulls and counters ------------------------------------------------------------------- */

static int by_arrival(const void *a, const void *b) {
    double x = ((const hbrx_quiet *)a)->arrived, y = ((const hbrx_quiet *)b)->arrived;
    return (x > y) - (x < y);
}

int hbrx_pull(hbrx_table *t, hbrx_quiet *out, int max_out) {
    int n = 0;
    pthread_mutex_lock(&t->lock);
    for (int s = 0; s < t->n_servers; s++) {
        for (int p = 0; p < t->n_paths && n < max_out; p++) {
            entry *e = &t->entries[s * t->n_paths + p];
            if (!e->dirty) continue;
            hbrx_quiet *q = &out[n++];
            q->arrived = e->q_arrived;
            q->sender = s;
            q->path = p;
            q->first = e->alive_at;
            q->incarnation = e->q_inc;
            q->seq = e->q_seq;
            q->heard = e->q_heard;
            q->offline = e->q_offline;
            e->dirty = 0;
        }
    }
    pthread_mutex_unlock(&t->lock);
    qsort(out, (size_t)n, sizeof *out, by_arrival);
    return n;
}

int hbrx_entry_stats(hbrx_table *t, int sender, int path, uint64_t *received, uint64_t *seq,
                     double *last_wall) {
    if (sender < 0 || sender >= t->n_servers || path < 0 || path >= t->n_paths) return -EINVAL;
    pthread_mutex_lock(&t->lock);
    const entry *e = &t->entries[sender * t->n_paths + path];
    *received = e->received;
    *seq = e->seq;
    *last_wall = e->wall;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

int hbrx_delays(hbrx_table *t, int path, double *out, int max_out) {
    if (path < 0 || path >= t->n_paths) return -EINVAL;
    pthread_mutex_lock(&t->lock);
    const path_info *pi = &t->paths[path];
    int n = pi->n_delays < max_out ? pi->n_delays : max_out;
    for (int i = 0; i < n; i++)
        out[i] = pi->delays[(pi->next_delay - n + i + HBRX_DELAYS) % HBRX_DELAYS];
    pthread_mutex_unlock(&t->lock);
    return n;
}
