/* libFuzzer target: config_read_file(), the demarche.ini reader (inih underneath). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/config.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *path = fuzz_write("demarche.ini", data, size);
	struct config cfg;
	char *err = NULL;
	int rc;

	/* Half the inputs readable by others, so that the password check is taken both ways. */
	chmod(path, size % 2 ? 0644 : 0600);
	config_init(&cfg);
	rc = config_read_file(&cfg, path, &err);
	if (rc != 0 && !err)
		abort();
	if (rc == 0 && (!cfg.path || cfg.smtp.concurrency < 0 || cfg.smtp.timeout < 0))
		abort();
	config_free(&cfg);
	free(err);
	free(path);
	return 0;
}
