// SPDX-License-Identifier: GPL-2.0
/* The out-of-line parts of the kshim headers: the test seam, wait queues. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/atomic.h>
#include <linux/wait.h>

__thread void (*kshim_atomic_inc_hook)(atomic_t *v);
unsigned int kshim_wait_timeout_ms = 20000;

static void die_on(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "kshim: %s: %s\n", what, strerror(err));
		abort();
	}
}

void init_waitqueue_head(wait_queue_head_t *wq)
{
	pthread_condattr_t ca;

	die_on(pthread_mutex_init(&wq->lock, NULL), "pthread_mutex_init");
	die_on(pthread_condattr_init(&ca), "pthread_condattr_init");
	die_on(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), "pthread_condattr_setclock");
	die_on(pthread_cond_init(&wq->cond, &ca), "pthread_cond_init");
	pthread_condattr_destroy(&ca);
	__atomic_store_n(&wq->sleepers, 0, __ATOMIC_SEQ_CST);
}

void wake_up(wait_queue_head_t *wq)
{
	/* Under the lock: a waiter that counted itself is asleep or re-testing. */
	die_on(pthread_mutex_lock(&wq->lock), "pthread_mutex_lock");
	die_on(pthread_cond_broadcast(&wq->cond), "pthread_cond_broadcast");
	die_on(pthread_mutex_unlock(&wq->lock), "pthread_mutex_unlock");
}

void kshim_wait_begin(wait_queue_head_t *wq, struct kshim_wait *w)
{
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += kshim_wait_timeout_ms / 1000;
	w->deadline.tv_nsec += (long)(kshim_wait_timeout_ms % 1000) * 1000000L;
	if (w->deadline.tv_nsec >= 1000000000L) {
		w->deadline.tv_sec++;
		w->deadline.tv_nsec -= 1000000000L;
	}
	die_on(pthread_mutex_lock(&wq->lock), "pthread_mutex_lock");
	/* Counted (seq_cst) before the caller tests its condition again. */
	__atomic_fetch_add(&wq->sleepers, 1, __ATOMIC_SEQ_CST);
}

bool kshim_wait_sleep(wait_queue_head_t *wq, struct kshim_wait *w)
{
	int err = pthread_cond_timedwait(&wq->cond, &wq->lock, &w->deadline);

	if (err == ETIMEDOUT)
		return false;
	die_on(err, "pthread_cond_timedwait");
	return true;
}

void kshim_wait_end(wait_queue_head_t *wq, struct kshim_wait *w)
{
	__atomic_fetch_sub(&wq->sleepers, 1, __ATOMIC_SEQ_CST);
	die_on(pthread_mutex_unlock(&wq->lock), "pthread_mutex_unlock");
}

void kshim_wait_timed_out(const char *cond, const char *file, int line, bool now_true)
{
	fprintf(stderr, "kshim: wait_event(%s) at %s:%d: not woken within %u ms%s\n",
		cond, file, line, kshim_wait_timeout_ms,
		now_true ? " although the condition is true: a lost wake-up" :
			   ": the condition is still false");
	abort();
}
