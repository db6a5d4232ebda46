// Package jenkins starts, follows and stops Jenkins builds of
// parameterized jobs through Jenkins' remote access API.
//
// Jenkins docs:
//   - remote access API: https://www.jenkins.io/doc/book/using/remote-access-api/
//   - buildWithParameters answers 201 with the queue item in Location
//     (JENKINS-23235); the queue item shows why, cancelled and, once the
//     build started, executable{number,url}.
//   - CSRF: requests authenticated with an API token need no crumb
//     (https://www.jenkins.io/doc/book/security/csrf-protection/).
//
// Authentication is HTTP Basic with a user name and an API token (never a
// password: passwords need a crumb and a session).
//
// A Run is first a queue item (ID "queue-N", Ref queue_id) and then a build
// (ID the build number, Ref build). Status follows the queue item until it
// names its build, then the build; if the queue item has expired before
// gatebot saw its build, the build is found by its GATE_ID parameter.
//
// Every build gets the gate id as the GATE_ID parameter (target
// gate_id_parameter renames it; "" sends none). Declare it as a string
// parameter of the job: it makes every request unique, so Jenkins does not
// fold two gates' identical requests into one queue item, and it lets
// Trigger find a build already started for the gate, so a retry after a
// crash does not start a second one. (A retry while the first request is
// still queued is folded by Jenkins itself into the same queue item.)
//
// Jenkins drops parameters a job does not define, so that lookup only works
// when the job defines the gate-id parameter. RepeatableTrigger therefore
// reads the job's parameter definitions (cached per job) and allows a repeat
// after a 5xx, a timeout or a crash only when the target sends the
// parameter and the job defines it; otherwise gatebot treats the trigger as
// not repeatable and a person checks Jenkins before retrying.
//
// Like every provider sub-package it imports only pipelines,
// pipelines/apiclient and the standard library.
package jenkins
