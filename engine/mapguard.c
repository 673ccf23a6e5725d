/* mapguard.c - reading mapped segment bytes without dying: a page of a
 * mapping whose file was truncated (or whose disk returns an error) raises
 * SIGBUS when touched.  The engine installs one process-wide SIGBUS handler
 * (at the first kvs_open) that, when the faulting thread is inside a guarded
 * copy from a mapping, jumps back to that copy's start with the failure; any
 * other SIGBUS goes to the handler that was installed before (by default:
 * the process dies, as it would without kvs). */
#include "mapguard.h"
#include "util.h"

#include <signal.h>
#include <string.h>
#include <ucontext.h>

_Thread_local struct kvs__mapguard kvs__mapguard;

static struct sigaction prev_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static void bus_handler(int sig, siginfo_t *si, void *uctx)
{
	/* Only a fault the kernel raised for this thread's access counts
	 * (si_code > 0); a SIGBUS sent with kill() is passed on. */
	if (kvs__mapguard.armed && si && si->si_code > 0) {
		kvs__mapguard.armed = 0;
		kvs__mapguard.faults++;
		/* The jump buffer saved no signal mask (that costs a system
		 * call on every read): restore the mask the thread had when
		 * it faulted, so that SIGBUS, blocked while this handler
		 * runs, is not left blocked (a later fault would then kill
		 * the process). */
		if (uctx)
			pthread_sigmask(SIG_SETMASK,
					&((ucontext_t *)uctx)->uc_sigmask, NULL);
		siglongjmp(kvs__mapguard.jb, 1);
	}
	if (prev_bus.sa_flags & SA_SIGINFO) {
		if (prev_bus.sa_sigaction)
			prev_bus.sa_sigaction(sig, si, uctx);
		return;
	}
	if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN) {
		prev_bus.sa_handler(sig);
		return;
	}
	/* The default action (a SIGBUS cannot usefully be ignored: the
	 * access would fault again): die with the signal. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGBUS, &dfl, NULL);
	raise(SIGBUS);
}

static void install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = bus_handler;
	sigemptyset(&sa.sa_mask);
	/* SA_NODEFER: a second fault in another guarded copy of the same
	 * thread must reach the handler too. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	if (sigaction(SIGBUS, &sa, &prev_bus) != 0)
		memset(&prev_bus, 0, sizeof prev_bus); /* left as it was */
}

void kvs__mapguard_install(void)
{
	KVS_CHECK(pthread_once(&install_once, install));
}

bool kvs__map_copy(void *dst, const void *src, size_t n)
{
	if (sigsetjmp(kvs__mapguard.jb, 0) != 0)
		return false;
	KVS__MAP_ARM();
	memcpy(dst, src, n);
	KVS__MAP_DISARM();
	return true;
}
