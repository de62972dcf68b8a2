/*
 * diskhb: the I/O hot path of clp's disk heartbeat (clp/heartbeat/diskhb.py).
 *
 * One handle per open device. Every transfer is O_DIRECT | O_DSYNC from a page-aligned buffer
 * owned by the handle, so a write has reached the device (not a page cache) when the call
 * returns, and a read sees what the other servers wrote to the device, not a stale cache.
 * A "cycle" is the heartbeat round: write this server's block, then read a contiguous range of
 * blocks (the header and every slot) in one read.
 *
 * Blocks here are DHB_BLOCK bytes (4096), independent of the device's logical block size, which
 * must divide DHB_BLOCK. Every function returns 0 or -errno; a short read or write is -EIO.
 * Nothing here keeps global state, so handles may be used from several threads (one handle per
 * thread).
 *
 * The part between the CDEF markers is also the cffi declaration (native/build_native.py reads
 * it), so it must stay plain C declarations without macros or includes.
 */
#ifndef CLP_DISKHB_H
#define CLP_DISKHB_H

#include <stddef.h>
#include <stdint.h>

/* CDEF BEGIN */
#define DHB_BLOCK 4096

typedef struct dhb_device {
    int fd;
    uint32_t logical_block_size; /* BLKSSZGET, or DHB_BLOCK for a regular file */
    uint64_t size;               /* bytes: BLKGETSIZE64, or st_size for a regular file */
    unsigned char *wbuf;         /* DHB_BLOCK bytes, aligned: the block being written */
    unsigned char *rbuf;         /* rbuf_blocks * DHB_BLOCK bytes, aligned: the last read */
    uint32_t rbuf_blocks;
} dhb_device;

/* Open path for direct synchronous I/O; *out is a new handle on success. */
int dhb_open(const char *path, dhb_device **out);

/* The same, read-only when read_only is not 0 (the disk monitor never writes a device). */
int dhb_open_mode(const char *path, int read_only, dhb_device **out);

/* SCSI TEST UNIT READY through SG_IO on path (opened read-only, non-blocking), waiting at most
 * timeout_ms. 0: ready; 1: not ready, with the sense key in *sense_key and the SCSI status in
 * *status; -errno when the command could not be sent (-ENOTTY: not a SCSI device). */
int dhb_test_unit_ready(const char *path, unsigned int timeout_ms, unsigned char *sense_key,
                        unsigned char *status);

/* Close the device and free the handle (NULL is fine). */
void dhb_close(dhb_device *dev);

/* Write len bytes (<= DHB_BLOCK, zero-padded to a block) at block number `block`. */
int dhb_write(dhb_device *dev, uint64_t block, const void *data, size_t len);

/* Read n_blocks blocks from block `first` into out (out_len >= n_blocks * DHB_BLOCK). */
int dhb_read(dhb_device *dev, uint64_t first, uint32_t n_blocks, void *out, size_t out_len);

/* One heartbeat round: dhb_write(write_block, data, len) then dhb_read(first, n_blocks, out). */
int dhb_cycle(dhb_device *dev, uint64_t write_block, const void *data, size_t len,
              uint64_t first, uint32_t n_blocks, void *out, size_t out_len);
/* CDEF END */

#endif
