/* signals.c - how a long-running service takes its signals (core.h). */
#include <pthread.h>
#include <signal.h>

#include "sam/core.h"

void sam_service_signals(sigset_t *set, int extra)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	if (extra) sigaddset(set, extra);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}
