/*
 * supervise.h - the contract between the supervisor (`sam supervise`, the
 * lean binary build/sam-supervise) and its clients (`sam up|down|status|
 * start|stop|restart|logs`).
 *
 * Control socket: $SAM_HOME/run/samd.sock (SOCK_STREAM, mode 0600). A client
 * connects, writes ONE command line terminated by "\n", and reads ONE JSON
 * object terminated by "\n"; then the server closes the connection.
 *
 *   ping                -> {"ok":true,"pid":N,"version":"..."}
 *   status              -> {"ok":true,"pid":N,"uptime_s":F,"ready":B,
 *                           "memory":{"available_mb":F,"level":"ok|..."},
 *                           "services":[{"name","state","enabled","priority",
 *                             "pid","port","url","restarts","last_exit",
 *                             "since","paused","one_shot"}...]}
 *   start NAME | stop NAME | restart NAME
 *                       -> {"ok":true} | {"ok":false,"error":"..."}
 *   shutdown            -> {"ok":true}, then every service is stopped in
 *                          reverse dependency order and the supervisor exits
 *
 * "ready" is true once every enabled, non-one-shot service is ready or has
 * definitively failed (so `sam up` knows when to return).
 *
 * Service states (the "state" field): "stopped", "waiting" (held back until
 * its dependencies are ready), "starting" (running, not yet ready), "ready",
 * "backoff" (crashed, restart pending), "paused" (SIGSTOPped by the memory
 * guard), "stopping", "failed" (crash loop, or its port is held by another
 * process, or a dependency never became ready), "done" (a one-shot job that
 * exited 0), "disabled".
 *
 * Files the supervisor keeps in $SAM_HOME/run/: samd.pid, NAME.pid for each
 * running service, services.json = {"NAME": {"name","pid","port","url",
 * "state","restarts","last_exit","priority"}, ...} (rewritten atomically on
 * every change; clients find services by its "url"). Logs: one file per
 * service in $SAM_HOME/logs/NAME.log, rotated by size (NAME.log.1, ...).
 */
#ifndef SAM_SUPERVISE_H
#define SAM_SUPERVISE_H

#include <stddef.h>

#include "sam/core.h"

#define SUP_SOCK "run/samd.sock"
#define SUP_MAX_LINE 4096

enum sup_priority { SUP_CRITICAL, SUP_HIGH, SUP_NORMAL, SUP_LOW, SUP_BACKGROUND };

/*
 * Send one command and return the reply line (malloc'd JSON text, caller
 * frees). SAM_ENOTFOUND when no supervisor listens; SAM_EIO on errors.
 */
int sup_request(const char *cmd, char **reply, double timeout_s, struct sam_error *err);

#endif
