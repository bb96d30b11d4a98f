/*
 * clock.h: one monotonic clock for every duration phasemig measures (DDL
 * attempts, batches, fills, the progress line's rate).
 */
#ifndef PHASEMIG_CLOCK_H
#define PHASEMIG_CLOCK_H

/* Milliseconds on CLOCK_MONOTONIC: only differences mean anything. */
double clock_now_ms(void);

#endif
