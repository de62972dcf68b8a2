/*
 * diskhb: direct, synchronous block I/O for clp's disk heartbeat. See diskhb.h.
 *
 * Called from Python through cffi, which releases the GIL for the duration of each call: a disk
 * that hangs stalls only the heartbeat thread that called, never the event loop.
 */
#define _GNU_SOURCE
#include "diskhb.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <scsi/sg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Query the logical block size and size of an open device (or regular file, for tests). */
static int query_geometry(dhb_device *dev)
{
    struct stat st;
    int bsize = 0;

    if (fstat(dev->fd, &st) != 0)
        return -errno;
    if (S_ISREG(st.st_mode)) {
        dev->logical_block_size = DHB_BLOCK;
        dev->size = (uint64_t)st.st_size;
        return 0;
    }
    if (!S_ISBLK(st.st_mode))
        return -ENOTBLK;
    if (ioctl(dev->fd, BLKSSZGET, &bsize) != 0)
        return -errno;
    if (ioctl(dev->fd, BLKGETSIZE64, &dev->size) != 0)
        return -errno;
    /* O_DIRECT transfers must be multiples of the logical block size. */
    if (bsize <= 0 || bsize > DHB_BLOCK || DHB_BLOCK % bsize != 0)
        return -EINVAL;
    dev->logical_block_size = (uint32_t)bsize;
    return 0;
}

int dhb_open(const char *path, dhb_device **out)
{
    return dhb_open_mode(path, 0, out);
}

int dhb_open_mode(const char *path, int read_only, dhb_device **out)
{
    dhb_device *dev;
    int rc;

    *out = NULL;
    dev = calloc(1, sizeof(*dev));
    if (dev == NULL)
        return -ENOMEM;
    dev->fd = open(path, (read_only ? O_RDONLY : O_RDWR | O_DSYNC) | O_DIRECT | O_CLOEXEC);
    if (dev->fd < 0) {
        rc = -errno;
        free(dev);
        return rc;
    }
    rc = query_geometry(dev);
    if (rc == 0 && posix_memalign((void **)&dev->wbuf, DHB_BLOCK, DHB_BLOCK) != 0)
        rc = -ENOMEM;
    if (rc != 0) {
        dhb_close(dev);
        return rc;
    }
    *out = dev;
    return 0;
}

void dhb_close(dhb_device *dev)
{
    if (dev == NULL)
        return;
    if (dev->fd >= 0)
        close(dev->fd);
    free(dev->wbuf);
    free(dev->rbuf);
    free(dev);
}

/* Make rbuf hold at least n_blocks blocks; it only grows (the range is the same every round). */
static int reserve_read_buffer(dhb_device *dev, uint32_t n_blocks)
{
    void *buf;

    if (n_blocks <= dev->rbuf_blocks)
        return 0;
    if (posix_memalign(&buf, DHB_BLOCK, (size_t)n_blocks * DHB_BLOCK) != 0)
        return -ENOMEM;
    free(dev->rbuf);
    dev->rbuf = buf;
    dev->rbuf_blocks = n_blocks;
    return 0;
}

/* A whole-block transfer at a block offset: 0, -errno, or -EIO when short (EOF, device end). */
static int transfer_result(ssize_t done, size_t wanted)
{
    if (done < 0)
        return -errno;
    return (size_t)done == wanted ? 0 : -EIO;
}

int dhb_write(dhb_device *dev, uint64_t block, const void *data, size_t len)
{
    ssize_t done;

    if (len > DHB_BLOCK)
        return -EINVAL;
    memcpy(dev->wbuf, data, len);
    memset(dev->wbuf + len, 0, DHB_BLOCK - len);
    do
        done = pwrite(dev->fd, dev->wbuf, DHB_BLOCK, (off_t)(block * DHB_BLOCK));
    while (done < 0 && errno == EINTR);
    return transfer_result(done, DHB_BLOCK);
}

int dhb_read(dhb_device *dev, uint64_t first, uint32_t n_blocks, void *out, size_t out_len)
{
    size_t bytes = (size_t)n_blocks * DHB_BLOCK;
    ssize_t done;
    int rc;

    if (n_blocks == 0 || out_len < bytes)
        return -EINVAL;
    rc = reserve_read_buffer(dev, n_blocks);
    if (rc != 0)
        return rc;
    do
        done = pread(dev->fd, dev->rbuf, bytes, (off_t)(first * DHB_BLOCK));
    while (done < 0 && errno == EINTR);
    rc = transfer_result(done, bytes);
    if (rc == 0)
        memcpy(out, dev->rbuf, bytes);
    return rc;
}

int dhb_cycle(dhb_device *dev, uint64_t write_block, const void *data, size_t len,
              uint64_t first, uint32_t n_blocks, void *out, size_t out_len)
{
    int rc = dhb_write(dev, write_block, data, len);

    if (rc != 0)
        return rc;
    return dhb_read(dev, first, n_blocks, out, out_len);
}

int dhb_test_unit_ready(const char *path, unsigned int timeout_ms, unsigned char *sense_key,
                        unsigned char *status)
{
    unsigned char cdb[6] = {0}; /* TEST UNIT READY: opcode 0x00, no data */
    unsigned char sense[32];
    sg_io_hdr_t io;
    int fd, rc;

    *sense_key = 0;
    *status = 0;
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    memset(&io, 0, sizeof(io));
    memset(sense, 0, sizeof(sense));
    io.interface_id = 'S';
    io.cmd_len = sizeof(cdb);
    io.cmdp = cdb;
    io.dxfer_direction = SG_DXFER_NONE;
    io.sbp = sense;
    io.mx_sb_len = sizeof(sense);
    io.timeout = timeout_ms;
    rc = ioctl(fd, SG_IO, &io) < 0 ? -errno : 0;
    close(fd);
    if (rc != 0)
        return rc;
    if (io.status == 0 && io.host_status == 0 && io.driver_status == 0)
        return 0;
    *status = io.status;
    if (io.sb_len_wr > 2)
        *sense_key = (sense[0] & 0x7e) == 0x72 ? (sense[1] & 0x0f) : (sense[2] & 0x0f);
    return 1;
}
