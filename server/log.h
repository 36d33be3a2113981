/*
 * log.h - the daemon's log: one line per event on stderr, with the level
 * and, where there is one, the store; with --syslog, to syslog as well.
 */
#ifndef BE_LOG_H
#define BE_LOG_H

enum log_level { LL_ERR = 0, LL_WARN = 1, LL_INFO = 2, LL_DEBUG = 3 };

/* log_set_level() - print events up to this level (default LL_INFO). */
void log_set_level(int level);

/* log_to_syslog() - also send every event to syslog (daemon facility). */
void log_to_syslog(void);

/* log_msg() - "bufferengined: [store] level: message"; store may be NULL. */
void log_msg(int level, const char *store, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* BE_LOG_H */
