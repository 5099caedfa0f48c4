/* demarche audit --format xlsx. */
#include "cmd/audit.h"
#include "base/error.h"
int audit_xlsx(struct ledger *l, const struct audit_opts *a, char **err)
{
	(void)l;
	(void)a;
	return error_set(err, EX_SOFTWARE, "todo");
}
