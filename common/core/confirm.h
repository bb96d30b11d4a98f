/*
 * confirm.h: a question to the operator on the controlling terminal
 * (/dev/tty), never on the standard streams, so that a redirected or piped
 * standard input or error can neither answer it nor hide it.
 */
#ifndef PHASEMIG_CONFIRM_H
#define PHASEMIG_CONFIRM_H

typedef enum
{
	CONFIRM_YES,   /* the operator typed the word yes */
	CONFIRM_NO,    /* anything else, or end of input */
	CONFIRM_NO_TTY /* no controlling terminal to ask on */
} ConfirmAnswer;

/*
 * Write QUESTION to the controlling terminal, after discarding what was
 * typed ahead, and read one line there.  Only "yes" (exact, case-sensitive,
 * surrounding blanks ignored) is CONFIRM_YES.  CONFIRM_NO_TTY when the
 * process has no controlling terminal (cron, nohup under setsid, CI...).
 */
ConfirmAnswer confirm_ask(const char *question);

#endif
