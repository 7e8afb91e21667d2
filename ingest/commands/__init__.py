"""Shell-command classification: from a command line alone, what it does and to which environment.

Used by the Claude Code adapter (Bash tool calls) and by ``railbook gate`` (PreToolUse hook), so the
incident of DESIGN.md, an ``ALTER TABLE`` sent to the production host, is recognised before and
after it runs. Recognised programs (each segment of ``a && b | c; d`` is classified, and the most
consequential one names the command):

* ``psql`` / ``pgcli`` / ``mysql`` / ``mariadb`` / ``mycli``: connection URIs
  (``postgresql://user:pw@host:5432/db``), libpq conninfo (``"host=h dbname=d"``), ``-h``/``--host``,
  ``-d``/``-D``, ``PGHOST=``; SQL from ``-c``/``-e``/heredocs/pipes → ``sql:AlterTable``,
  ``sql:DropTable``, ``sql:Truncate``, ``sql:Delete``, … on ``db://<host>/<database>``, environment
  from ``config.environment_for_host``. ``dropdb``/``createdb`` too.
* ``kubectl`` / ``oc``: ``--context`` → cluster → ``config.environment_for_cluster``; verb + kind →
  ``k8s:<verb>:<resource>`` (``exec`` → ``k8s:create:pods/exec``, as the audit log spells it).
* ``terraform`` / ``tofu``: ``destroy`` and ``apply -destroy`` → ``terraform:Destroy``; ``apply``,
  ``plan``, ``state rm``, … The environment is a configured environment *name* found as a path
  component of ``-chdir``, in a ``-var-file`` name or in ``TF_WORKSPACE``.
* ``aws``: ``aws iam attach-role-policy`` → ``iam:AttachRolePolicy`` (CloudTrail's spelling);
  ``aws s3 rm|rb|cp`` → ``s3:DeleteObject|DeleteBucket|PutObject``; account from ARNs in the
  arguments → ``config.environment_for_account``.
* ``git push``: ``git:Push`` or ``git:ForcePush`` (``-f``, ``--force*``, ``+refspec``), ``--delete`` →
  ``git:DeleteBranch``; protected branches from config.
* ``rm``: ``file:Delete`` (recursive or not).
* anything else: ``shell:Exec``.

Unknown stays unknown: no host, context or account in the command means environment ``unknown``.
"""

from ingest.commands._classify import classify_command
from ingest.commands._facts import CommandFacts
from ingest.commands._redact import redact_command
from ingest.commands._sql import classify_sql

__all__ = ["CommandFacts", "classify_command", "classify_sql", "redact_command"]
