/* demarche templates: list the letter templates. */
#include "cmd/cmd.h"

const char usage_templates[] = "usage: demarche templates [--format text|json]\n"
                               "\n"
                               "Lists each template: id, title, languages and params.\n";

int cmd_templates(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("templates");
}
