/*
 * hbrx: the receive hot path of clp's heartbeats (clp/heartbeat/rxtable.py).
 *
 * Every heartbeat record (clp/heartbeat/packet.py: 64 bytes, then HMAC-SHA256 of them) that a
 * path receives is verified here, in the same order and with the same reasons as the Python
 * decoder: size, magic/version/kind, MAC, cluster, path and sender, lateness, replay. A record
 * that passes updates a table with one entry per (sender, path): its last (incarnation,
 * sequence), when it arrived, and when the same heartbeat first arrived on any path.
 *
 * Most records say nothing new: the sender is Online, the path Normal, and its bitmaps are those
 * of its previous heartbeat. Those are QUIET: the table keeps the newest of them and the event
 * loop pulls the entries that changed (hbrx_pull) when it needs them, instead of handling every
 * record. A record is NEWS, handed back at once, when the caller has not said the entry is quiet
 * (hbrx_set_quiet: the server is not Online, or the path not Normal), or when it is the sender's
 * newest heartbeat and its incarnation, state or bitmaps differ from the previous newest, or it
 * marks this server Offline. While a sender's news records are not all acknowledged (hbrx_ack:
 * the caller has taken them), every record of that sender is news too: a copy of the news on
 * another path, or a later record, taken quietly first would make the news look old, and its
 * bitmaps would never be read. Drops come back too, with the reason, for the caller to count
 * and log.
 *
 * hbrx_lan_wait reads the datagrams of a LAN heartbeat socket (recvmmsg), each timed by its
 * kernel receive stamp (SO_TIMESTAMPNS), and returns only when some need the caller.
 *
 * A table may be used from several threads (a mutex guards it): the event loop, and a thread per
 * LAN socket waiting in hbrx_lan_wait. Times: "arrived" and "first" are
 * CLOCK_MONOTONIC seconds, "sent" the sender's wall clock.
 *
 * The part between the CDEF markers is also the cffi declaration (native/build_native.py reads
 * it), so it must stay plain C declarations without macros other than integer constants.
 */
#ifndef CLP_HBRX_H
#define CLP_HBRX_H

#include <stddef.h>
#include <stdint.h>

/* CDEF BEGIN */
#define HBRX_PACKET 96
#define HBRX_MAX_SERVERS 32
#define HBRX_DELAYS 1000 /* one-way delays kept per path */

/* what hbrx_ingest returns: one of these, or minus a drop reason */
#define HBRX_QUIET 0
#define HBRX_NEWS 1
#define HBRX_STALE 2 /* not newer than the last accepted, and count_stale was 0: not news */

/* drop reasons (packet.Drop) */
#define HBRX_MALFORMED 1
#define HBRX_BAD_MAC 2
#define HBRX_UNKNOWN_CLUSTER 3
#define HBRX_UNKNOWN_SENDER 4
#define HBRX_REPLAY 5
#define HBRX_LATE 6

typedef struct hbrx_record {
    int32_t kind;         /* HBRX_NEWS or HBRX_QUIET (a pulled entry), or -reason (a drop) */
    int32_t path;
    int32_t sender;       /* the packet's sender field (drops: as read, if the size was right) */
    uint32_t state;
    uint64_t incarnation;
    uint64_t seq;
    uint64_t cluster_id;
    double sent;          /* the sender's wall clock */
    double arrived;       /* monotonic: when it was received (LAN: the kernel's stamp) */
    double first;         /* monotonic: when this heartbeat first arrived, on any path */
    double now_wall;      /* this server's wall clock when it was handled (drops: lateness) */
    uint32_t heard;
    uint32_t offline;
    uint32_t len;         /* bytes received */
    unsigned char data[96]; /* drops: the first bytes received */
    char source[64];      /* LAN: the source address */
} hbrx_record;

/* a pulled entry: what the event loop needs of a QUIET record (Python reads an array of them
 * with struct.iter_unpack, format "=diidQQII") */
typedef struct hbrx_quiet {
    double arrived;       /* the last record's arrival */
    int32_t sender;
    int32_t path;
    double first;         /* what the path's timer moves to: of the records taken since the last
                           * pull, the latest of their first arrivals (each on any path) */
    uint64_t incarnation;
    uint64_t seq;
    uint32_t heard;
    uint32_t offline;
} hbrx_quiet;

typedef struct hbrx_table hbrx_table;

/* A table for n_servers servers (at most HBRX_MAX_SERVERS) and n_paths paths; NULL on a bad
 * argument or no memory. Every entry starts not quiet. */
hbrx_table *hbrx_new(const unsigned char *key, size_t key_len, uint64_t cluster_id,
                     int my_index, int n_servers, int n_paths);
void hbrx_free(hbrx_table *t);

/* The servers that use the path (bit i: server i). 0, or -EINVAL. */
int hbrx_set_members(hbrx_table *t, int path, uint32_t members);

/* Whether a record of sender on path that changes nothing may wait for hbrx_pull. */
int hbrx_set_quiet(hbrx_table *t, int sender, int path, int quiet);

/* Verify one record received on path. expect_sender: the only sender it may come from (a disk
 * slot, a serial line, a LAN source address), or -2 for any member of the path. max_late > 0:
 * refuse a record sent more than that many seconds before now_wall. count_stale: whether a
 * record not newer than the last accepted is a replay drop (else HBRX_STALE). For NEWS and
 * drops, *out is filled. */
int hbrx_ingest(hbrx_table *t, int path, const unsigned char *data, size_t len,
                int expect_sender, double arrived, double now_wall, double max_late,
                int count_stale, hbrx_record *out);

/* The caller has taken (or dropped) one news record of sender; once all are, its quiet records
 * may wait for a pull again. 0, or -EINVAL. */
int hbrx_ack(hbrx_table *t, int sender);

/* Forget every sender's newest heartbeat: the next record of each is news (after the caller
 * ignored records for a while: a suspended cluster). */
void hbrx_renew(hbrx_table *t);

/* A LAN peer of path: datagrams from this address (text, IPv4 or IPv6) are sender's. */
int hbrx_lan_add_peer(hbrx_table *t, int path, int sender, const char *address);

/* Turn on the receive stamps of a LAN socket. 0 or -errno. */
int hbrx_lan_prepare(int fd);

/* Wait at most timeout_ms for datagrams on fd and read them, as records of path, every one
 * waiting at each wake-up (recvmmsg), until some need the caller: returns how many are in out
 * (NEWS and drops), or 0 when the time ran out, or wake_fd (an eventfd, read here) was written,
 * or 64 reads failed or found nothing (the caller adds *errors and calls again); -errno when
 * poll failed (-EBADF: fd closed).
 * Quiet datagrams never return. *errors: reads that reported an error (ICMP: a peer's port
 * refused one of our datagrams). For a thread of its own, the GIL released. */
int hbrx_lan_wait(hbrx_table *t, int fd, int path, int wake_fd, int timeout_ms,
                  hbrx_record *out, int max_out, int *errors);

/* The entries updated by QUIET records since the last pull, oldest arrival first; at most
 * max_out (the rest stay for the next pull). */
int hbrx_pull(hbrx_table *t, hbrx_quiet *out, int max_out);

/* Records accepted on (sender, path), its last sequence and its arrival's wall time. */
int hbrx_entry_stats(hbrx_table *t, int sender, int path, uint64_t *received, uint64_t *seq,
                     double *last_wall);

/* The last one-way delays (arrival stamp - send time) of LAN records on path, at most max_out
 * of them (the table keeps HBRX_DELAYS per path). */
int hbrx_delays(hbrx_table *t, int path, double *out, int max_out);

/* HMAC-SHA256(key, msg) into out (32 bytes); the tests compare it with Python's hmac. */
void hbrx_hmac_sha256(const unsigned char *key, size_t key_len, const unsigned char *msg,
                      size_t len, unsigned char *out);
/* CDEF END */

#endif
