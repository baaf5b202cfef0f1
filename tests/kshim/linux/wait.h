/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kshim <linux/wait.h>: wait queues on a pthread mutex and condition
 * variable.  The kernel's rules hold: a waiter counts itself, then tests
 * the condition; wq_has_sleeper() is a full barrier, then a look at that
 * count; wake_up() wakes every waiter.
 *
 * wait_event() never hangs: after kshim_wait_timeout_ms without a wake-up
 * that makes the condition true it prints what it waited for, where, and
 * whether the condition had become true without a wake-up (a lost wake-up),
 * and aborts.
 */
#ifndef KSHIM_LINUX_WAIT_H
#define KSHIM_LINUX_WAIT_H

#include <pthread.h>
#include <time.h>
#include <linux/compiler.h>
#include <linux/types.h>

typedef struct wait_queue_head {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int sleepers;		/* waiters between counting and leaving */
} wait_queue_head_t;

/* How long wait_event() waits before it aborts the test (default 20000). */
extern unsigned int kshim_wait_timeout_ms;

struct kshim_wait {
	struct timespec deadline;
};

void init_waitqueue_head(wait_queue_head_t *wq);
void wake_up(wait_queue_head_t *wq);
void kshim_wait_begin(wait_queue_head_t *wq, struct kshim_wait *w);
/* Sleeps until a wake-up or the deadline: false at the deadline. */
bool kshim_wait_sleep(wait_queue_head_t *wq, struct kshim_wait *w);
void kshim_wait_end(wait_queue_head_t *wq, struct kshim_wait *w);
__attribute__((noreturn))
void kshim_wait_timed_out(const char *cond, const char *file, int line, bool now_true);

static inline bool waitqueue_active(wait_queue_head_t *wq)
{
	return __atomic_load_n(&wq->sleepers, __ATOMIC_SEQ_CST) > 0;
}

static inline bool wq_has_sleeper(wait_queue_head_t *wq)
{
	smp_mb();	/* the caller's condition change before the look */
	return waitqueue_active(wq);
}

#define wait_event(wq_head, condition)						\
do {										\
	struct kshim_wait __kw;							\
										\
	if (condition)								\
		break;								\
	kshim_wait_begin(&(wq_head), &__kw);					\
	while (!(condition))							\
		if (!kshim_wait_sleep(&(wq_head), &__kw))			\
			kshim_wait_timed_out(#condition, __FILE__, __LINE__,	\
					     (condition));			\
	kshim_wait_end(&(wq_head), &__kw);					\
} while (0)

#endif
