/*
 * plan_find.h: the plan file --plan names: a path as given, or a plan's name
 * (no slash, no .json) looked up among the installed plans and the source
 * tree's plans/.
 */
#ifndef PHASEMIG_PLAN_FIND_H
#define PHASEMIG_PLAN_FIND_H

/*
 * The file for --plan ARG, malloc'd: ARG itself when it names a file or a
 * path (a slash, or ending in .json); else, for a name, NAME.json in
 * <bindir>/../share/phasemig/plans (make install's) or <bindir>/../plans (the
 * source tree), <bindir> being where the running binary is.  NULL, after
 * saying where it looked, when a name is found in neither.
 */
char *plan_find(const char *arg);

#endif
