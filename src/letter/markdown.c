/* Markdown to HTML through cmark (safe mode), and a markup stripper for comparisons. */
#include <cmark.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/escape.h"
#include "base/xalloc.h"
#include "letter/markdown.h"

char *markdown_to_html(const char *md, size_t len)
{
	/* CMARK_OPT_SAFE is the default since cmark 0.29; named here so the intent is plain.
	 * No CMARK_OPT_SMART: a letter keeps its quotes and dashes exactly as written. */
	char *html = cmark_markdown_to_html(md ? md : "", md ? len : 0,
	                                    CMARK_OPT_SAFE | CMARK_OPT_VALIDATE_UTF8);
	char *copy;

	if (!html)
		abort(); /* cmark only fails when out of memory */
	copy = xstrdup(html);
	free(html);
	return copy;
}

void markdown_html_open(struct buf *b, const char *title)
{
	buf_adds(b, "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n");
	if (title) {
		buf_adds(b, "<title>");
		esc_html_chars(b, title, 0);
		buf_adds(b, "</title>\n");
	}
	/* Inline style only: many mail readers drop <style> blocks. */
	buf_adds(b, "</head>\n<body style=\"font-family: Georgia, 'Times New Roman', serif; "
	            "font-size: 15px; line-height: 1.5; color: #111; max-width: 42em; "
	            "margin: 1em auto; padding: 0 1em;\">\n");
}

void markdown_html_close(struct buf *b)
{
	buf_adds(b, "</body>\n</html>\n");
}

char *markdown_html_document(const char *md, size_t len, const char *title)
{
	struct buf b = BUF_INIT;
	char *body = markdown_to_html(md, len);

	markdown_html_open(&b, title);
	buf_adds(&b, body);
	markdown_html_close(&b);
	free(body);
	return buf_detach(&b);
}

int markdown_splits_at(const char *md, size_t len, size_t at)
{
	unsigned char c;

	if (at < 2 || at >= len || md[at - 2] != '\n' || md[at - 1] != '\n')
		return 0;
	/* A paragraph starts here, and nothing above runs on into it: after an empty line,
	 * only a line indented under a list item would continue that item. */
	c = (unsigned char)md[at];
	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80))
		return 0;
	/* Link reference definitions apply to the whole document (CommonMark 4.7). */
	if (memmem(md, len, "]:", 2))
		return 0;
	/* Blocks that empty lines do not end: fenced code (4.5), raw HTML kinds 1 to 5 (4.6;
	 * kinds 6 and 7 end at an empty line). */
	if (memmem(md, at, "```", 3) || memmem(md, at, "~~~", 3))
		return 0;
	for (const char *p = md; (p = memchr(p, '<', (size_t)(md + at - p))); p++) {
		char n = p + 1 < md + at ? p[1] : '\0';

		if (n == '!' || n == '?' || (n && strchr("sSpPtT", n)))
			return 0;
	}
	return 1;
}

/* The number of an ordered list item at line (no indentation), or -1; *text: after "N. ". */
static long ordered_item(const char *line, const char **text)
{
	const char *p = line;
	long n = 0;
	int digits = 0;

	/* CommonMark 0.30 section 5.2: 1-9 digits, then '.' or ')', then a space or the end. */
	while (isdigit((unsigned char)*p) && digits < 9) {
		n = n * 10 + (*p - '0');
		p++;
		digits++;
	}
	if (!digits || (*p != '.' && *p != ')'))
		return -1;
	if (p[1] != ' ' && p[1] != '\t' && p[1] != '\n' && p[1] != '\0')
		return -1;
	*text = p;
	return n;
}

char *markdown_renumber(const char *md)
{
	struct buf b = BUF_INIT;
	const char *p = md ? md : "";
	long next = -1; /* the number the next item gets; -1 outside a list */
	int after_blank = 1;

	buf_grow(&b, strlen(p) + 16); /* the same length give or take a digit: no regrowth */
	while (*p) {
		const char *eol = strchr(p, '\n');
		const char *rest;
		size_t len = eol ? (size_t)(eol - p + 1) : strlen(p);
		long n = ordered_item(p, &rest);
		int blank = 1;

		/* Only a list starting at 1 may interrupt a paragraph (section 5.2). */
		if (n >= 0 && next < 0 && !after_blank && n != 1)
			n = -1;
		for (const char *q = p; q < p + len; q++) {
			if (!isspace((unsigned char)*q)) {
				blank = 0;
				break;
			}
		}
		if (n >= 0) {
			if (next < 0)
				next = n;
			buf_addf(&b, "%ld", next++);
			buf_add(&b, rest, len - (size_t)(rest - p));
		} else {
			/* A line at the margin after a blank line ends the list; indented lines and
			 * lazy continuation lines (section 5.2) do not. */
			if (!blank && after_blank && *p != ' ' && *p != '\t')
				next = -1;
			buf_add(&b, p, len);
		}
		after_blank = blank;
		p += len;
	}
	return buf_detach(&b);
}

/* Skips list markers at p (a line start, after indentation); returns where the text starts. */
static const char *skip_list_markers(const char *p)
{
	for (;;) {
		const char *q = p;

		while (*q == ' ' || *q == '\t')
			q++;
		if ((*q == '-' || *q == '*' || *q == '+') && (q[1] == ' ' || q[1] == '\t')) {
			p = q + 2;
			continue;
		}
		if (isdigit((unsigned char)*q)) {
			const char *r = q;
			while (isdigit((unsigned char)*r))
				r++;
			if ((*r == '.' || *r == ')') && (r[1] == ' ' || r[1] == '\t')) {
				p = r + 2;
				continue;
			}
		}
		return q;
	}
}

char *markdown_to_plain(const char *md)
{
	struct buf b = BUF_INIT;
	int line_start = 1, space = 0;
	const char *p = md ? md : "";

	while (*p) {
		if (line_start) {
			p = skip_list_markers(p);
			while (*p == '#')
				p++;
			line_start = 0;
			continue;
		}
		if (*p == '\n') {
			line_start = 1;
			space = 1;
			p++;
			continue;
		}
		if (isspace((unsigned char)*p)) {
			space = 1;
			p++;
			continue;
		}
		if (*p == '*' || *p == '_') {
			p++;
			continue;
		}
		if (*p == '\\' && p[1] && ispunct((unsigned char)p[1]))
			p++;
		if (space && b.len)
			buf_addc(&b, ' ');
		space = 0;
		buf_addc(&b, *p++);
	}
	return buf_detach(&b);
}
