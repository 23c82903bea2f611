/*
 * cmd_gguf.c - `sam gguf [--all] FILE`: print a GGUF file's header, its
 * metadata (index, key, type, value) and its tensor table, like gguf-dump.
 *
 * Everything that comes from the file is escaped on output (control bytes,
 * quotes, invalid UTF-8), so a hostile file cannot drive the terminal.
 * Without --all, arrays show their first ARR_SHOW elements and strings their
 * first STR_SHOW bytes.
 */
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sam/core.h"
#include "sam/ggml_types.h"
#include "sam/gguf.h"

#define ARR_SHOW 8
#define STR_SHOW 200
#define KEY_COL_MAX 44
#define NAME_COL_MAX 36

/* Length of the valid UTF-8 sequence at s[0..n) and its code point, or 0. */
static int utf8_seq(const unsigned char *s, uint64_t n, uint32_t *cp)
{
	int len;
	uint32_t c = s[0], min;
	if (c >= 0xc2 && c <= 0xdf) len = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef) len = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4) len = 4, c &= 0x07, min = 0x10000;
	else return 0;
	if ((uint64_t)len > n) return 0;
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
	*cp = c;
	return len;
}

/*
 * Print s[0..n) escaped, at most max bytes of it (then "..."), inside
 * quotes when quote. Returns the number of columns printed (approximately:
 * one per code point).
 */
static size_t put_escaped(FILE *o, const char *str, uint64_t n, uint64_t max, bool quote)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t cols = 0;
	uint64_t i = 0, lim = n < max ? n : max;
	while (lim < n && lim > 0 && (s[lim] & 0xc0) == 0x80) lim--; /* cut between characters */
	if (quote) cols += (size_t)fprintf(o, "\"");
	while (i < lim) {
		unsigned char b = s[i];
		uint32_t cp;
		int len;
		if (b == '\n') cols += (size_t)fprintf(o, "\\n");
		else if (b == '\t') cols += (size_t)fprintf(o, "\\t");
		else if (b == '\r') cols += (size_t)fprintf(o, "\\r");
		else if (b < 0x20 || b == 0x7f) cols += (size_t)fprintf(o, "\\x%02x", b);
		else if (b == '\\' || (quote && b == '"')) cols += (size_t)fprintf(o, "\\%c", b);
		else if (b < 0x80) {
			fputc(b, o);
			cols++;
		} else if ((len = utf8_seq(s + i, lim - i, &cp)) > 0) {
			if (cp < 0xa0) {
				cols += (size_t)fprintf(o, "\\u%04x", (unsigned)cp); /* C1 controls */
			} else {
				fwrite(s + i, 1, (size_t)len, o);
				cols++;
			}
			i += (uint64_t)len;
			continue;
		} else {
			cols += (size_t)fprintf(o, "\\x%02x", b);
		}
		i++;
	}
	if (quote) cols += (size_t)fprintf(o, "\"");
	if (lim < n) cols += (size_t)fprintf(o, "... (%llu bytes)", (unsigned long long)n);
	return cols;
}

static void pad_to(FILE *o, size_t cols, size_t width)
{
	fprintf(o, "%*s", (int)(cols < width ? width - cols : 0) + 2, "");
}

/* Shortest decimal that reads back as the same float (f32) or double. */
static void put_float(FILE *o, double v, bool f32)
{
	char b[64];
	if (isnan(v)) {
		fputs("nan", o);
		return;
	}
	if (isinf(v)) {
		fputs(v < 0 ? "-inf" : "inf", o);
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(b, sizeof b, "%.*g", p, v);
		double r = strtod(b, NULL);
		if (f32 ? (float)r == (float)v : r == v) break;
	}
	fputs(b, o);
}

static const uint8_t elem_size[GGUF_T_COUNT] = {
	[GGUF_T_U8] = 1, [GGUF_T_I8] = 1, [GGUF_T_U16] = 2, [GGUF_T_I16] = 2,
	[GGUF_T_U32] = 4, [GGUF_T_I32] = 4, [GGUF_T_F32] = 4, [GGUF_T_BOOL] = 1,
	[GGUF_T_U64] = 8, [GGUF_T_I64] = 8, [GGUF_T_F64] = 8,
};

/* Print one scalar of type t stored (unaligned, little-endian) at p. */
static void put_scalar(FILE *o, uint32_t t, const uint8_t *p)
{
	switch (t) {
	case GGUF_T_U8: fprintf(o, "%u", p[0]); break;
	case GGUF_T_I8: fprintf(o, "%d", (int8_t)p[0]); break;
	case GGUF_T_BOOL: fputs(p[0] ? "true" : "false", o); break;
	case GGUF_T_U16: { uint16_t x; memcpy(&x, p, 2); fprintf(o, "%u", x); break; }
	case GGUF_T_I16: { int16_t x; memcpy(&x, p, 2); fprintf(o, "%d", x); break; }
	case GGUF_T_U32: { uint32_t x; memcpy(&x, p, 4); fprintf(o, "%lu", (unsigned long)x); break; }
	case GGUF_T_I32: { int32_t x; memcpy(&x, p, 4); fprintf(o, "%ld", (long)x); break; }
	case GGUF_T_U64: { uint64_t x; memcpy(&x, p, 8); fprintf(o, "%llu", (unsigned long long)x); break; }
	case GGUF_T_I64: { int64_t x; memcpy(&x, p, 8); fprintf(o, "%lld", (long long)x); break; }
	case GGUF_T_F32: { float x; memcpy(&x, p, 4); put_float(o, x, true); break; }
	case GGUF_T_F64: { double x; memcpy(&x, p, 8); put_float(o, x, false); break; }
	}
}

static void put_value(FILE *o, const struct gguf_value *v, bool all)
{
	uint64_t smax = all ? UINT64_MAX : STR_SHOW;
	switch (v->type) {
	case GGUF_T_STRING: put_escaped(o, v->str.s, v->str.n, smax, true); return;
	case GGUF_T_ARRAY: break;
	case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64:
		fprintf(o, "%llu", (unsigned long long)v->u);
		return;
	case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64:
		fprintf(o, "%lld", (long long)v->i);
		return;
	case GGUF_T_BOOL: fputs(v->u ? "true" : "false", o); return;
	case GGUF_T_F32: put_float(o, v->f, true); return;
	case GGUF_T_F64: put_float(o, v->f, false); return;
	default: fputs("?", o); return;
	}
	uint64_t n = v->arr.n, show = all || n <= ARR_SHOW ? n : ARR_SHOW;
	fputc('[', o);
	for (uint64_t i = 0; i < show; i++) {
		if (i) fputs(", ", o);
		if (v->arr.type == GGUF_T_STRING) {
			struct gguf_str s = gguf_arr_str(v, i);
			put_escaped(o, s.s, s.n, smax, true);
		} else {
			put_scalar(o, v->arr.type, v->arr.data + i * elem_size[v->arr.type]);
		}
	}
	if (show < n) fputs(", ...", o);
	fputc(']', o);
}

static size_t type_str(char *b, size_t cap, const struct gguf_value *v)
{
	int n;
	if (v->type == GGUF_T_ARRAY)
		n = snprintf(b, cap, "arr[%s,%llu]", gguf_vtype_name(v->arr.type), (unsigned long long)v->arr.n);
	else
		n = snprintf(b, cap, "%s", gguf_vtype_name(v->type));
	return n < 0 ? 0 : (size_t)n;
}

/* "[ne0, ne1, ...]" into b; returns the element count. */
static uint64_t dims_str(char *b, size_t cap, const struct gguf_tensor *t)
{
	size_t l = 0;
	uint64_t nelem = 1;
	for (uint32_t d = 0; d < t->n_dims; d++) {
		int k = snprintf(b + l, cap - l, "%s%llu", d ? ", " : "[", (unsigned long long)t->ne[d]);
		if (k > 0 && (size_t)k < cap - l) l += (size_t)k;
		nelem *= t->ne[d]; /* the reader checked that the product fits */
	}
	snprintf(b + l, cap - l, "]");
	return nelem;
}

static void dump(FILE *o, const struct gguf_file *f, bool all)
{
	char tb[64];
	char dims[128];
	size_t kw = 3, tw = 4, nw = 6, ntw = 4, dw = 4;
	for (uint64_t i = 0; i < f->n_kv; i++) {
		if (f->kv[i].key.n > kw) kw = f->kv[i].key.n > KEY_COL_MAX ? KEY_COL_MAX : (size_t)f->kv[i].key.n;
		size_t l = type_str(tb, sizeof tb, &f->kv[i].v);
		if (l > tw) tw = l;
	}
	for (uint64_t i = 0; i < f->n_tensors; i++) {
		const struct gguf_tensor *t = &f->tensors[i];
		if (t->name.n > nw) nw = t->name.n > NAME_COL_MAX ? NAME_COL_MAX : (size_t)t->name.n;
		size_t l = strlen(ggml_type_name(t->type));
		if (l > ntw) ntw = l;
		dims_str(dims, sizeof dims, t);
		if ((l = strlen(dims)) > dw) dw = l;
	}

	fprintf(o, "GGUF version %u, %llu tensors, %llu kv, alignment %llu, data offset %llu, file size %zu\n",
		f->version, (unsigned long long)f->n_tensors, (unsigned long long)f->n_kv,
		(unsigned long long)f->alignment, (unsigned long long)f->data_offset, f->size);

	fprintf(o, "\n%5s  %-*s  %-*s  %s\n", "#", (int)kw, "key", (int)tw, "type", "value");
	for (uint64_t i = 0; i < f->n_kv; i++) {
		const struct gguf_kv *kv = &f->kv[i];
		fprintf(o, "%5llu  ", (unsigned long long)i);
		pad_to(o, put_escaped(o, kv->key.s, kv->key.n, UINT64_MAX, false), kw);
		type_str(tb, sizeof tb, &kv->v);
		fprintf(o, "%-*s  ", (int)tw, tb);
		put_value(o, &kv->v, all);
		fputc('\n', o);
	}

	fprintf(o, "\n%5s  %-*s  %-*s  %-*s  %12s %12s %12s\n", "#", (int)nw, "tensor", (int)ntw, "type", (int)dw,
		"dims", "elements", "offset", "bytes");
	for (uint64_t i = 0; i < f->n_tensors; i++) {
		const struct gguf_tensor *t = &f->tensors[i];
		uint64_t nelem = dims_str(dims, sizeof dims, t);
		fprintf(o, "%5llu  ", (unsigned long long)i);
		pad_to(o, put_escaped(o, t->name.s, t->name.n, UINT64_MAX, false), nw);
		fprintf(o, "%-*s  %-*s  %12llu %12llu %12llu\n", (int)ntw, ggml_type_name(t->type), (int)dw, dims,
			(unsigned long long)nelem, (unsigned long long)(f->data_offset + t->offset),
			(unsigned long long)t->nbytes);
	}
}

int cmd_gguf(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	const struct sam_cmd *cmd = cli_find("gguf");
	bool all = false;
	int c;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "a", opts, NULL)) != -1) {
		switch (c) {
		case 'a': all = true; break;
		case '?':
			/* optopt: the unknown short option, 'a' for "--all=x", 0 for an unknown long one */
			if (optopt == 'a') return cli_usage_error(cmd, "option '--all' takes no value");
			if (optopt) return cli_usage_error(cmd, "unknown option '-%c'", optopt);
			return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		default: SAM_BUG("getopt returned %d", c);
		}
	}
	if (optind >= argc) return cli_usage_error(cmd, "missing FILE");
	if (argc - optind > 1) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);

	struct gguf_file f;
	struct sam_error err = { 0 };
	if (gguf_open(&f, argv[optind], &err)) {
		fprintf(stderr, "sam gguf: %s\n", err.msg);
		return 1;
	}
	dump(stdout, &f, all);
	gguf_close(&f);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "sam gguf: error writing the output\n");
		return 1;
	}
	return 0;
}
