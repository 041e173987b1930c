// zod reports a body that matches no branch of a union as one issue, "Invalid input", with each
// branch's own issues inside. A user wants the branch they meant and the field that is wrong there:
// the branch with the fewest issues (a branch that does not even know the fields sent counts worse),
// its issues given paths from the top of the body.

import type { z } from 'zod';

export function flattenUnionIssues(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
    const cost = (branch: z.core.$ZodIssue[]) =>
      branch.length + branch.filter((i) => i.code === 'unrecognized_keys').reduce((n, i) => n + (i.code === 'unrecognized_keys' ? i.keys.length : 0), 0);
    const best = issue.errors.reduce((a, b) => (cost(b) < cost(a) ? b : a));
    return flattenUnionIssues(best.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }) as z.core.$ZodIssue));
  });
}
