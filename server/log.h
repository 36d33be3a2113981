/*
 * log.h - the daemon's log: one line per event on stderr, with the level
 * and, where there is one, the store.
 */
#ifndef BE_LOG_H
#define BE_LOG_H

enum log_level { LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* log_set_level() - print events up to this level (default LOG_INFO). */
void log_set_level(int level);

/* log_msg() - "bufferengined: [store] level: message"; store may be NULL. */
void log_msg(int level, const char *store, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* BE_LOG_H */
