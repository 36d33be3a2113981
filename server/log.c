/*
 * log.c - see log.h.  A line is formatted whole, then written with one
 * write(2), so lines from a dying daemon are never interleaved halves.
 */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <unistd.h>

#include "server/log.h"

static int log_level = LL_INFO;
static int log_syslog;

void log_to_syslog(void)
{
	openlog("bufferengined", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = 1;
}

void log_set_level(int level)
{
	log_level = level;
}

void log_msg(int level, const char *store, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	if (store)
		n = snprintf(line, sizeof(line), "bufferengined: [%s] %s: ", store, names[level]);
	else
		n = snprintf(line, sizeof(line), "bufferengined: %s: ", names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (log_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

		/* Without the program name: syslog adds its own. */
		syslog(prio[level], "%s", line + sizeof("bufferengined: ") - 1);
	}
	for (n = 0; line[n]; n++)
		;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
