/* error.c - status codes and error detail buffers. */
#include <stdio.h>
#include <string.h>

#include "sam/core.h"

const char *sam_strerror(int code)
{
	switch (code) {
	case SAM_OK: return "success";
	case SAM_EIO: return "i/o error";
	case SAM_EFORMAT: return "format error";
	case SAM_ENOMEM: return "out of memory";
	case SAM_EINVAL: return "invalid argument";
	case SAM_EUNSUPPORTED: return "unsupported";
	case SAM_ENOTFOUND: return "not found";
	case SAM_ERANGE: return "out of range";
	case SAM_EBUSY: return "busy";
	case SAM_ESTOPPED: return "stopped";
	case SAM_ECONFLICT: return "conflict";
	}
	return "unknown error";
}

int sam_errorf(struct sam_error *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return code;
}

void sam_error_prefix(struct sam_error *err, const char *prefix)
{
	if (!err) return;
	/* truncation is fine here: the message is for a human */
	size_t cap = sizeof err->msg, pl = strlen(prefix), ml = strlen(err->msg);
	if (pl > cap / 2) pl = cap / 2;
	if (pl + 2 + ml >= cap) ml = cap - pl - 3;
	memmove(err->msg + pl + 2, err->msg, ml);
	memcpy(err->msg, prefix, pl);
	memcpy(err->msg + pl, ": ", 2);
	err->msg[pl + 2 + ml] = 0;
}
