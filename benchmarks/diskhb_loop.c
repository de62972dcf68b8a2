/*
 * Baseline for benchmarks/hb_latency.py's disk section: the disk heartbeat's cycle (pwrite one
 * 4096-byte block, then pread a contiguous range) in a plain C loop, O_DIRECT | O_DSYNC, the
 * same flags and buffers as native/diskhb.c but no Python at all.
 *
 * Usage: diskhb_loop DEVICE ITERATIONS WRITE_BLOCK FIRST_BLOCK N_BLOCKS
 * Prints the nanoseconds of each iteration, one per line.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    void *wbuf, *rbuf;
    long iterations, write_block, first, n_blocks;
    int fd;

    if (argc != 6) {
        fprintf(stderr, "usage: %s DEVICE ITERATIONS WRITE_BLOCK FIRST_BLOCK N_BLOCKS\n", argv[0]);
        return 2;
    }
    iterations = atol(argv[2]);
    write_block = atol(argv[3]);
    first = atol(argv[4]);
    n_blocks = atol(argv[5]);
    fd = open(argv[1], O_RDWR | O_DIRECT | O_DSYNC | O_CLOEXEC);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    if (posix_memalign(&wbuf, BLOCK, BLOCK) != 0 ||
        posix_memalign(&rbuf, BLOCK, (size_t)n_blocks * BLOCK) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(wbuf, 0x5a, BLOCK);
    for (long i = 0; i < iterations; i++) {
        long long t0 = now_ns();

        if (pwrite(fd, wbuf, BLOCK, (off_t)write_block * BLOCK) != BLOCK ||
            pread(fd, rbuf, (size_t)n_blocks * BLOCK, (off_t)first * BLOCK) !=
                (ssize_t)(n_blocks * BLOCK)) {
            perror("cycle");
            return 1;
        }
        printf("%lld\n", now_ns() - t0);
    }
    close(fd);
    return 0;
}
