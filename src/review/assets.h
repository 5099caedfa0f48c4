/* The review pages' templates and stylesheet, compiled in from src/review/assets/. */
#ifndef DEMARCHE_REVIEW_ASSETS_H
#define DEMARCHE_REVIEW_ASSETS_H

#include <stddef.h>

struct review_asset {
	const char *name; /* the file's name: "campaign.mustache", "style.css" */
	const char *data; /* NUL-terminated */
	size_t len;
};

/* Ends with a zeroed entry. */
extern const struct review_asset review_assets[];

#endif
