/* Ctrl-C, SIGTERM and SIGHUP caught for a while as a request to stop, counted in a flag. */
#ifndef DEMARCHE_STOPSIG_H
#define DEMARCHE_STOPSIG_H

#include <signal.h>

struct stopsig {
	struct sigaction old[3]; /* the handlers before stopsig_catch() */
};

/*
 * Until stopsig_release(): SIGINT, SIGTERM and SIGHUP each add one to *flag, up to 2 (the
 * first asks to stop after what is in flight, the second to abandon it), instead of
 * ending the process. One catch at a time per process: the handler keeps flag.
 */
void stopsig_catch(struct stopsig *s, volatile sig_atomic_t *flag);
void stopsig_release(struct stopsig *s); /* puts the earlier handlers back */

#endif
