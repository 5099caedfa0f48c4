/* demarche render: render one Mustache file with a JSON context. */
#include "cmd/cmd.h"

const char usage_render[] =
    "usage: demarche render FILE [--data FILE.json] [--partials DIR] [--escape "
    "html|markdown|none]\n"
    "                       [--strict]\n"
    "\n"
    "Renders FILE with the JSON context to standard output. {{> NAME}} reads DIR/NAME.mustache.\n";

int cmd_render(int argc, char **argv, struct app *app)
{
	(void)argc;
	(void)argv;
	(void)app;
	return cmd_not_implemented("render");
}
