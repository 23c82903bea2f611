/*
 * sup.h - internals of the supervisor (build/sam-supervise). The public
 * contract (control socket, states, files) is include/sam/supervise.h;
 * docs/supervisor.md describes the behaviour.
 *
 * Shape (s6-style): one thread runs one poll() loop (sup_loop.c) that turns
 * everything that happens - a signal through the self-pipe, a line on the
 * control socket, an HTTP check finishing, a newline on a readiness fd, a
 * timer expiring, a memory level crossing - into an event for one service,
 * and a state x event table (sup_fsm.c) decides what that event does in
 * that service's state. Nothing blocks but poll(), the fork/exec handshake
 * and the SQLite insert of an event.
 *
 * Modules, all prefixed sup_:
 *   sup_table.c   the service table: built-in defaults + [service.NAME] and
 *                 [supervisor] from sam.conf, validation (cycles, unknown deps)
 *   sup_fsm.c     the state machine and its actions (spawn, stop, restart, pause)
 *   sup_loop.c    the poll loop, signals, timers, memory guard, sup_main()
 *   sup_proc.c    fork/exec of a service, process groups, leftovers, port holders
 *   sup_http.c    a tiny non-blocking HTTP/1.0 GET client for ready/health checks
 *   sup_log.c     the supervisor's log and per-service logs with size rotation
 *   sup_files.c   services.json, pid files, the status JSON
 *   sup_ctl.c     the control socket run/samd.sock
 *   sup_notify.c  sd_notify (READY=1, WATCHDOG=1, STOPPING=1) without libsystemd
 */
#ifndef SAM_SUP_H
#define SAM_SUP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sam/config.h"
#include "sam/core.h"
#include "sam/supervise.h"

#define SUP_MAX_SERVICES 64
#define SUP_MAX_DEPS 16
#define SUP_NAME_MAX 48      /* characters of a service name, [a-z0-9_-] */
#define SUP_LINE_MAX 4096    /* a log line longer than this is split */
#define SUP_FAIL_RING 64     /* failure times remembered for crash-loop detection */
#define SUP_MAX_CLIENTS 32   /* control connections served at once */
#define SUP_READY_POLL 0.1   /* seconds between readiness checks while starting */
#define SUP_HEALTH_FAILS 3   /* consecutive failed health checks that make a service unhealthy */

/* Service states; names in sup_state_name() are the contract's. */
enum sup_state {
	SUP_STOPPED,
	SUP_WAITING,
	SUP_STARTING,
	SUP_READY,
	SUP_BACKOFF,
	SUP_PAUSED,
	SUP_STOPPING,
	SUP_FAILED,
	SUP_DONE,
	SUP_DISABLED,
	SUP_NSTATES
};

/* What can happen to a service (the columns of the table in sup_fsm.c). */
enum sup_event {
	SUP_EV_START,         /* `start NAME`, or the initial start-up */
	SUP_EV_STOP,          /* `stop NAME`, or shutdown */
	SUP_EV_RESTART,       /* `restart NAME` */
	SUP_EV_DEPS_OK,       /* every dependency is ready and memory allows a start */
	SUP_EV_DEP_FAILED,    /* a dependency failed or is disabled */
	SUP_EV_EXIT,          /* the child exited (status in last_status) */
	SUP_EV_READY,         /* ready URL answered 2xx, a newline on the notify fd, or started (no check) */
	SUP_EV_READY_TIMEOUT, /* not ready within ready_timeout */
	SUP_EV_HEALTH_OK,
	SUP_EV_HEALTH_FAIL,
	SUP_EV_BACKOFF_DONE,  /* the restart delay is over */
	SUP_EV_KILL_TIMEOUT,  /* stop_timeout passed after SIGTERM */
	SUP_EV_PAUSE,         /* the memory guard pauses this priority class */
	SUP_EV_RESUME,        /* ... and resumes it */
	SUP_NEVENTS
};

enum sup_restart { SUP_RESTART_ALWAYS, SUP_RESTART_ON_FAILURE, SUP_RESTART_NEVER };
enum sup_ready_kind { SUP_READY_STARTED, SUP_READY_HTTP, SUP_READY_NOTIFY };
/* What a STOPPING service becomes once its process is gone. */
enum sup_after { SUP_AFTER_STOPPED, SUP_AFTER_START, SUP_AFTER_FAILURE, SUP_AFTER_FAILED };

/* A parsed http://HOST:PORT/PATH (numeric host or localhost). */
struct sup_url {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char hostport[80]; /* for the Host: header */
	char path[512];
	char text[640];    /* the URL as configured */
};

/* Parse url; SAM_EINVAL naming what is wrong. */
int sup_url_parse(struct sup_url *u, const char *url, struct sam_error *err);

/* ---- sup_http.c: one non-blocking GET at a time ---------------------------------- */

enum { SUP_HTTP_PENDING = 0, SUP_HTTP_ECONN = -1, SUP_HTTP_ETIMEOUT = -2, SUP_HTTP_EPROTO = -3 };

struct sup_http {
	int fd;            /* -1 when idle */
	int phase;         /* connecting, sending, reading */
	double deadline;   /* sam_now() when it times out */
	char req[768];
	size_t req_len, req_off;
	char head[128];    /* the status line as it arrives */
	size_t head_len;
	int status;        /* HTTP status once the status line is in, else 0 */
	size_t drained;    /* body bytes read and thrown away */
	unsigned gen;      /* bumped by every start: tells a reused fd number from the polled one */
};

void sup_http_init(struct sup_http *h);
/*
 * Start GET u with a timeout. Returns SUP_HTTP_PENDING (poll h->fd for
 * sup_http_events()) or a final result at once (e.g. connection refused).
 */
int sup_http_start(struct sup_http *h, const struct sup_url *u, double timeout_s, double now);
short sup_http_events(const struct sup_http *h);
/*
 * Advance after poll() reported revents on h->fd, or with revents 0 to check
 * the deadline. Returns SUP_HTTP_PENDING, or the final result: an HTTP
 * status (100..599) or a negative SUP_HTTP_E*; then h is idle again.
 */
int sup_http_step(struct sup_http *h, short revents, double now);
void sup_http_cancel(struct sup_http *h);
/* "connection refused", "timeout", ... for a negative result. */
const char *sup_http_strerror(int result);

/* ---- sup_log.c --------------------------------------------------------------------- */

/* An append-only log file, rotated by size into PATH.1 .. PATH.keep. */
struct sup_logfile {
	int fd;            /* -1 when closed */
	char path[1024];
	long long size, max;
	int keep;
	int dup_to;        /* >= 0: keep this fd (stderr) pointing at the file across rotations */
};

int sup_logfile_open(struct sup_logfile *lf, const char *path, long long max, int keep, int dup_to,
		     struct sam_error *err);
/* Append one line (without its newline) prefixed with a UTC timestamp; rotates first when needed. */
void sup_logfile_line(struct sup_logfile *lf, const char *line, size_t len);
/* Close and open again (after SIGHUP, for external rotation). */
void sup_logfile_reopen(struct sup_logfile *lf);
void sup_logfile_close(struct sup_logfile *lf);
/* "2026-01-28T12:00:00.123Z" into buf (at least 32 bytes). */
void sup_timestamp(char *buf, size_t cap);

/* The supervisor's own log: stderr, which is logs/supervisor.log unless --foreground. */
void sup_log_to_file(struct sup_logfile *lf);
void sup_log(enum sam_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the service table -------------------------------------------------------------- */

struct sup_service {
	/* configuration (sup_table.c) */
	char name[SUP_NAME_MAX + 1];
	char **argv;              /* NULL-terminated; the strings and the array are malloc'd */
	int priority;             /* enum sup_priority */
	int ndeps;
	int deps[SUP_MAX_DEPS];   /* indexes into sup.svc */
	int ready_kind;           /* enum sup_ready_kind */
	struct sup_url ready_url; /* SUP_READY_HTTP */
	bool has_health;
	struct sup_url health_url;
	double health_interval, health_timeout, ready_timeout, stop_timeout;
	int restart;              /* enum sup_restart */
	bool enabled, one_shot, autostart;
	bool pausable;            /* the memory guard may SIGSTOP it (critical ones never) */
	bool enabled_by_user;     /* enabled by its [service.NAME] section (or not a built-in), not by default */
	int port;                 /* 0: none */
	char url[64];             /* "http://127.0.0.1:PORT", or "" */

	/* run time (sup_fsm.c, sup_loop.c) */
	int state;                /* enum sup_state */
	int paused_from;          /* STARTING or READY: where RESUME returns to */
	int after_stop;           /* enum sup_after, while STOPPING */
	pid_t pid;                /* the child, leader of its own process group; 0 when none */
	pid_t last_pid;           /* the child that exited last (for its events) */
	int out_fd;               /* read end of the child's stdout+stderr pipe, -1 */
	int notify_fd;            /* read end of the readiness pipe (ready = notify), -1 */
	struct sup_logfile log;   /* logs/NAME.log */
	char pend[SUP_LINE_MAX];  /* a partial output line */
	size_t pend_len;
	struct sup_http check;    /* the ready or health check in flight */
	int restarts;             /* automatic or commanded restarts since the supervisor started */
	int last_status;          /* wait status of the last exit; valid when has_exited */
	bool has_exited;
	double since;             /* wall clock of the last state change */
	double spawned_at;        /* sam_now() of the last spawn */
	double ready_deadline, next_check, backoff_until, kill_at, paused_at;
	int health_fails;         /* consecutive */
	double fails[SUP_FAIL_RING]; /* sam_now() of recent failures, oldest first */
	int nfails;
	bool dep_blocked;         /* FAILED because a dependency failed: retried when it is ready */
	bool is_restart;          /* the next spawn publishes service.restarted */
	char error[512];          /* why it failed / waits, or "" */
};

struct sup_settings {
	double mem_poll;          /* s between memory polls */
	double pause_mb[5];       /* per enum sup_priority: pause below this (0: never) */
	double hysteresis_mb;
	int crash_loop_count;
	double crash_loop_window;
	double backoff_max;
	long long log_max;
	int log_keep;
};

struct sup_client {
	int fd;                   /* -1: free slot */
	char in[SUP_MAX_LINE + 1];
	size_t in_len;
	char *out;                /* reply being written (malloc'd) */
	size_t out_len, out_off;
	double deadline;
};

struct sup {
	struct sup_settings set;
	struct sup_service svc[SUP_MAX_SERVICES];
	int n;
	int order[SUP_MAX_SERVICES]; /* dependencies before dependents */
	char sam_bin[1024];       /* the sam binary next to sam-supervise */

	/* run time */
	bool foreground;
	double started_wall, started_mono;
	int sig_r, sig_w;         /* self-pipe */
	int listen_fd;
	int lock_fd;
	struct sup_client clients[SUP_MAX_CLIENTS];
	struct sup_logfile selflog;
	double mem_mb;            /* last reading, -1 if none */
	bool class_paused[5];     /* per priority */
	double next_mem;
	bool shutting_down, exit_now, escalated;
	bool settled;             /* the initial start-up has settled (READY=1 sent) */
	bool dirty;               /* services.json must be rewritten */
	char why[160];            /* detail of the event being dispatched (a failed check's reason) */
	double watchdog_interval, next_watchdog;
	char notify_socket[256];
	char run_dir[1024], log_dir[1024];
};

/* sup_table.c */
/* Prepare a zero-filled d (calloc: the unused service slots stay untouched pages). */
void sup_init(struct sup *d);
/*
 * Fill d's service table and settings from the defaults and conf, with
 * sam_bin as the program of the built-in services. SAM_EINVAL/SAM_EFORMAT
 * with a message naming the section and key on any bad value, an unknown
 * key, an unknown dependency or a dependency cycle.
 */
int sup_table_load(struct sup *d, const struct sam_conf *conf, const char *sam_bin, struct sam_error *err);
/* Release what sup_table_load and the run time allocated (closes fds). */
void sup_free(struct sup *d);
/* Split a command line on blanks; "double quotes" group, \" and \\ inside them. */
int sup_split_command(const char *line, char ***argv, struct sam_error *err);
void sup_argv_free(char **argv);
struct sup_service *sup_find(struct sup *d, const char *name);
const char *sup_state_name(int state);
const char *sup_priority_name(int priority);
const char *sup_restart_name(int restart);

/* sup_fsm.c */
void sup_dispatch(struct sup *d, struct sup_service *s, int event);
const char *sup_event_name(int event);
/* Re-evaluate waiting services (dependencies, memory) until nothing changes. */
void sup_settle(struct sup *d);
/* Whether every dependency of s is ready. */
bool sup_deps_ready(const struct sup *d, const struct sup_service *s);
/* A result of s's in-flight check (status or negative error). */
void sup_check_done(struct sup *d, struct sup_service *s, int result);
/* Start the ready or health check that is due, if any. */
void sup_check_due(struct sup *d, struct sup_service *s, double now);
/* The child's output: read what is there, copy whole lines to its log. eof: flush the rest. */
void sup_drain_output(struct sup_service *s);
/* The child exited with wait status st. */
void sup_child_exited(struct sup *d, struct sup_service *s, int st);
/* A byte (or EOF) on the notify fd. */
void sup_notify_readable(struct sup *d, struct sup_service *s);
/* "exit 3", "signal 9 (Killed)" */
void sup_describe_status(int st, char *buf, size_t cap);

/* sup_proc.c */
struct sup_spawn {
	pid_t pid;
	int out_fd, notify_fd;
};
/* fork + exec s in its own session/process group; SAM_EIO with the exec error. */
int sup_spawn(const struct sup *d, const struct sup_service *s, struct sup_spawn *sp, struct sam_error *err);
/* Signal s's whole process group (ESRCH is fine). */
void sup_kill_group(pid_t pgid, int sig);
/* Whether 127.0.0.1:port can not be bound (someone listens there). */
bool sup_port_busy(int port);
/* The pid listening on TCP port (0: unknown) and its command name. */
pid_t sup_port_holder(int port, char *comm, size_t cap);
/* Whether pid is alive (not a zombie). */
bool sup_pid_alive(pid_t pid);
/*
 * Whether pid looks like a SAM service named name: SAM_SERVICE=name in its
 * environment (every service we start has it), or its program is named sam
 * or sam-*. False where /proc is missing: then leftovers are never touched.
 */
bool sup_pid_is_sam_service(pid_t pid, const char *name);
/* Stop leftovers of a previous supervisor (from services.json and run/NAME.pid). */
void sup_replace_leftovers(struct sup *d);
/* Make fd non-blocking and close-on-exec. */
int sup_fd_nonblock(int fd);
/* Directory of the running executable into buf (no trailing '/'). */
int sup_self_dir(char *buf, size_t cap, const char *argv0);

/* sup_files.c */
/* The status reply (malloc'd, one line with '\n'). */
char *sup_status_json(struct sup *d);
/* Rewrite run/services.json atomically. */
void sup_write_services_json(struct sup *d);
void sup_write_pidfile(struct sup *d, const struct sup_service *s);
void sup_remove_pidfile(struct sup *d, const struct sup_service *s);
/* The guard level: 3 ok, 2 medium (low+background paused), 1 low (normal too), 0 critical. */
int sup_guard_level(const struct sup *d);
/* Whether the start-up has settled (status "ready"). */
bool sup_all_settled(const struct sup *d);

/* sup_ctl.c */
/* Take run/samd.lock, make sure no other supervisor answers, listen on run/samd.sock. */
int sup_ctl_listen(struct sup *d, struct sam_error *err);
void sup_ctl_accept(struct sup *d);
void sup_ctl_io(struct sup *d, struct sup_client *c, short revents, double now);
void sup_ctl_close(struct sup_client *c);
void sup_ctl_unlisten(struct sup *d);
/* Answer one command line (malloc'd reply with '\n'); may start a shutdown. */
char *sup_ctl_command(struct sup *d, const char *line);

/* sup_notify.c */
/* Remember NOTIFY_SOCKET / WATCHDOG_USEC (then children do not see them). */
void sup_sd_init(struct sup *d);
void sup_sd_notify(const struct sup *d, const char *msg);

/* sup_loop.c */
int sup_main(int argc, char **argv);

#endif
