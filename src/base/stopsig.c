/* Stop signals counted in a flag: the caller finishes its work and says it was stopped. */
#include "base/stopsig.h"

#include <string.h>

static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
static volatile sig_atomic_t *volatile target;

static void on_signal(int sig)
{
	(void)sig;
	if (*target < 2)
		(*target)++;
}

void stopsig_catch(struct stopsig *s, volatile sig_atomic_t *flag)
{
	struct sigaction sa;

	target = flag;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &s->old[i]);
}

void stopsig_release(struct stopsig *s)
{
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &s->old[i], NULL);
}
