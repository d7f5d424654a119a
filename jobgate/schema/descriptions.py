"""What users read in GraphiQL's docs and in introspection: the description of every public type,
field, argument and enum value that the code does not describe where it is defined.

Keys are `Type`, `Type.field`, `Type.field(argument)` and `Enum.VALUE`. `describe(schema)` sets
them on the built schema; a test keeps every public element described and every key here naming
an element that exists and has no description of its own, so each element has one home.
"""

from __future__ import annotations

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
)

DESCRIPTIONS: dict[str, str] = {
    # --- roots ---------------------------------------------------------------------------------
    "Query": "Reading jobs, the catalog and providers. Every field needs a bearer token.",
    "Query.job(id)": "The job's id, as `submitJobs` returned it.",
    "Query.jobs(filter)": "Only jobs matching every field given; all visible jobs without it.",
    "Query.jobs(orderBy)": "The order of the list: newest first by default.",
    "Query.jobs(first)": "How many jobs to return, 1 to 1000.",
    "Query.jobs(after)": "`endCursor` of the previous page (with the same filter and order), to "
    "get the page after it.",
    "Query.applications": "Every application jobs can run, with its parameters.",
    "Query.products": "The machine types jobs can run on, at every provider or one.",
    "Query.products(provider)": "Only this provider's products.",
    "Query.providers": "The providers that run jobs here, with their products.",
    "Mutation": "Changing jobs. Users submit and act on their jobs; providers report updates.",
    "Mutation.submitJobs": "Submit 1 to 1000 jobs at once. Every item is validated first: all "
    "are created, or none (and `userErrors` says why, per item). The jobs start IN_QUEUE.",
    "Mutation.submitJobs(input)": "The jobs, and optionally a project and an idempotency key.",
    "Mutation.cancelJobs": "Ask the jobs' providers to stop them; each later ends SUCCESS with "
    "a cancelled status. Each job succeeds or fails on its own.",
    "Mutation.cancelJobs(input)": "The jobs to cancel; a job named twice is cancelled once.",
    "Mutation.extendJobs": "Add time to running jobs whose product supports time extension; "
    "the provider confirms with an update carrying `newTimeAllocation`.",
    "Mutation.extendJobs(input)": "How much time to add to each job; extensions of one job in "
    "one request add up.",
    "Mutation.suspendJobs": "Pause RUNNING jobs whose product supports suspension; they "
    "become SUSPENDED.",
    "Mutation.suspendJobs(input)": "The jobs to suspend.",
    "Mutation.resumeJobs": "Continue SUSPENDED jobs whose product supports suspension.",
    "Mutation.resumeJobs(input)": "The jobs to resume.",
    "Mutation.reportJobUpdates(input)": "The updates, applied in order.",
    "Mutation.reportJobLogs(input)": "The output lines, in the order the jobs wrote them.",
    "Mutation.acknowledgeProviderCommands(input)": "The ids of the commands carried out.",
    "Subscription": "Live streams over WebSocket (graphql-transport-ws or graphql-ws).",
    "Subscription.jobUpdates(jobIds)": "Only these jobs: their whole history first (unless "
    "`after` is given), and the stream completes when all of them have ended.",
    "Subscription.jobUpdates(after)": "A `cursor` from an earlier event or `latestUpdateCursor`: "
    "every update after it, then live ones, with no gap and no duplicate.",
    "Subscription.jobLogs(jobId)": "The job whose output to follow.",
    "Subscription.jobLogs(after)": "The `cursor` of the last line already read: the lines "
    "after it.",
    "Subscription.providerCommands(after)": "The `cursor` of the last command already handled.",
    # --- jobs ----------------------------------------------------------------------------------
    "Job": "A computation run by a provider: what was asked for (`specification`), where it "
    "stands (`status`) and every change on the way (`updates`). Modelled on UCloud's Job.",
    "Job.id": "The job's id, unique on this gateway.",
    "Job.owner": "Who created the job, and the project it belongs to (if any).",
    "Job.specification": "What the job runs and on what, as submitted (defaults filled in).",
    "Job.status": "Where the job stands now.",
    "Job.createdAt": "When the gateway accepted the job.",
    "Job.output": "Where the job's provider keeps its output.",
    "Job.providerGeneratedId": "The provider's own id of the job (Slurm's job id, for a "
    "Slurm provider), once the provider has reported it.",
    "Job.unixUser": "The Unix account the job runs as, where its provider runs jobs as their "
    'users\' own accounts (README: "Unix accounts"); null where it runs them as its own.',
    "Job.updates(last)": "Only the newest `last` updates.",
    "Job.permissions": "What the caller may do with this job.",
    "JobState.IN_QUEUE": "Accepted and waiting for its provider to start it.",
    "JobState.RUNNING": "Running at its provider.",
    "JobState.CANCELING": "Being stopped after a cancel.",
    "JobState.SUCCESS": "Ended (final). A program's non-zero exit and a cancel are SUCCESS too.",
    "JobState.FAILURE": "Ended by an infrastructure or scheduler fault (final).",
    "JobState.EXPIRED": "Stopped because its time allocation ran out (final).",
    "JobState.SUSPENDED": "Paused; `resumeJobs` continues it.",
    "JobStatus": "A job's current state and what follows from its updates.",
    "JobStatus.state": "The job's state.",
    "JobStatus.isFinal": "Whether the state is SUCCESS, FAILURE or EXPIRED: the job will not "
    "change state again.",
    "JobStatus.allowRestart": "Whether the provider allows the job to be restarted.",
    "JobStatus.resolvedApplication": "The application the job runs, as the catalog has it.",
    "JobStatus.resolvedProduct": "The product the job runs on, as the catalog has it.",
    "JobSpecification": "What a job runs, on what, and how: as submitted, defaults filled in.",
    "JobSpecification.application": "The application and its version.",
    "JobSpecification.product": "The machine type at its provider.",
    "JobSpecification.name": "A name for people; not unique.",
    "JobSpecification.replicas": "How many copies (ranks) of the program run.",
    "JobSpecification.allowDuplicateJob": "Whether it was submitted despite an equal active job.",
    "JobSpecification.openedFile": "A file the application opens at start (UCloud's openedFile).",
    "JobSpecification.restartOnExit": "Whether the provider restarts the program when it exits.",
    "JobSpecification.sshEnabled": "Whether SSH access to the job was asked for.",
    "JobOutput": "Where a job's output is.",
    "JobOutput.outputFolder": "The folder the provider reported for the job's output.",
    "JobUpdate.state": "The new state, if this update changed it.",
    "JobUpdate.status": "A message for people: what happened.",
    "JobUpdate.outputFolder": "The job's output folder, if this update reported it.",
    "JobUpdate.expectedState": "The state the provider expected the job to be in; the update "
    "applied only if it was.",
    "JobUpdate.expectedDifferentState": "Whether the update applied only if it changed the state.",
    "JobUpdate.allowRestart": "Whether the provider allows a restart, if this update said so.",
    "JobUpdateEvent": "One stored update of a job, as `jobUpdates` streams it.",
    "JobUpdateEvent.jobId": "The job the update belongs to.",
    "JobUpdateEvent.update": "The update.",
    "ResourceOwner": "Who owns a job.",
    "ResourceOwner.createdBy": "The username of the job's creator.",
    "ResourcePermissions": "Who may do what with a job.",
    "ResourceAclEntry": "Access granted to someone other than the job's owners.",
    "ResourceAclEntry.entity": "The user or project group granted access.",
    "ResourceAclEntry.permissions": "What they may do.",
    "AclEntity": "A user or a project group.",
    "AclUser": "One user.",
    "AclUser.username": "The user's name.",
    "AclProjectGroup": "A group of a project's members.",
    "AclProjectGroup.projectId": "The project.",
    "AclProjectGroup.group": "The group's name within the project.",
    "Permission": "What a caller may do with a job.",
    "Permission.READ": "See the job, its updates and its logs.",
    "Permission.EDIT": "Act on the job: cancel, extend, suspend, resume.",
    "Permission.ADMIN": "Everything, including changing who else may see and act on it.",
    "Permission.PROVIDER": "The job runs on the caller's provider: it reports the job's updates.",
    # --- listing -------------------------------------------------------------------------------
    "JobConnection": "One page of jobs (a Relay connection).",
    "JobConnection.edges": "The jobs of the page, each with its cursor.",
    "JobConnection.pageInfo": "Whether there are more pages, and the cursors to get them.",
    "JobConnection.nodes": "The jobs of the page, without cursors.",
    "JobConnection.totalCount": "How many jobs match the filter, on all pages.",
    "JobEdge": "A job in a page, with its cursor.",
    "JobEdge.cursor": "Pass it as `after` to get the jobs after this one.",
    "JobEdge.node": "The job.",
    "PageInfo": "Where a page stands in the whole list.",
    "PageInfo.hasNextPage": "Whether more jobs follow this page.",
    "PageInfo.hasPreviousPage": "Whether jobs came before this page (it was asked `after` one).",
    "PageInfo.startCursor": "The cursor of the page's first job.",
    "PageInfo.endCursor": "The cursor of the page's last job: pass it as `after` for the next "
    "page.",
    "JobFilter": "Which jobs to list; every field given must match.",
    "JobFilter.states": "Jobs in any of these states.",
    "JobFilter.application": "Jobs of this application (its name).",
    "JobFilter.createdBy": "Jobs created by this user.",
    "JobFilter.provider": "Jobs at this provider.",
    "JobFilter.productId": "Jobs on this product (its name).",
    "JobFilter.productCategory": "Jobs on products of this category.",
    "JobFilter.createdAfter": "Jobs created at or after this instant.",
    "JobFilter.createdBefore": "Jobs created before this instant.",
    "JobFilter.ids": "Jobs with these ids.",
    "JobFilter.providerGeneratedId": "The job with this provider-generated id.",
    "JobOrder": "How to order a list of jobs.",
    "JobOrder.field": "What to order by.",
    "JobOrder.direction": "Ascending or descending.",
    "JobOrderField.CREATED_AT": "When the job was created.",
    "JobOrderField.NAME": "The job's name, ignoring case.",
    "JobOrderField.CREATED_BY": "The creator's username.",
    "JobOrderField.STATE": "The job's place in the lifecycle (IN_QUEUE first, final states last).",
    "OrderDirection": "Ascending or descending.",
    "OrderDirection.ASC": "Smallest, oldest or first in the alphabet first.",
    "OrderDirection.DESC": "Largest, newest or last in the alphabet first.",
    # --- submitting and acting -----------------------------------------------------------------
    "SubmitJobsInput.jobs": "The jobs to create, 1 to 1000.",
    "SubmitJobsPayload": "The jobs created, or why none was.",
    "SubmitJobsPayload.jobs": "The new jobs, in request order (empty if any item was refused).",
    "SubmitJobsPayload.userErrors": "One entry per problem, with the item's `index` and the "
    "`field` path.",
    "JobSpecificationInput": "One job to submit: the application, the product and the values of "
    "the application's parameters.",
    "JobSpecificationInput.application": "The application and version to run.",
    "JobSpecificationInput.product": "The machine type to run on, at its provider.",
    "JobSpecificationInput.name": "A name for people: letters, digits, spaces and ():_-, at most "
    "200 characters.",
    "JobSpecificationInput.replicas": "How many copies (ranks) of the program to run, at least 1.",
    "JobSpecificationInput.parameters": "Values of the application's parameters, by name; "
    "optional ones may be left out, and defaults are filled in.",
    "JobSpecificationInput.resources": "Resources to attach: files, peers, networks, ingresses, "
    "block storage.",
    "JobSpecificationInput.timeAllocation": "The wall-time limit; the job EXPIRES when it runs "
    "out. Null: no limit.",
    "JobSpecificationInput.openedFile": "A file the application should open at start.",
    "JobSpecificationInput.restartOnExit": "Restart the program when it exits.",
    "JobSpecificationInput.sshEnabled": "Ask for SSH access (no application here offers it).",
    "NameAndVersion": "An application's name and version.",
    "NameAndVersion.name": "The application's name.",
    "NameAndVersion.version": "The application's version.",
    "NameAndVersionInput": "An application's name and version.",
    "NameAndVersionInput.name": "The application's name.",
    "NameAndVersionInput.version": "The application's version.",
    "ProductReference.id": "The product's name.",
    "ProductReference.category": "The product's category.",
    "ProductReference.provider": "The provider that offers the product.",
    "ProductReferenceInput": "Names a product: its name, category and provider, as `products` "
    "lists them.",
    "ProductReferenceInput.id": "The product's name.",
    "ProductReferenceInput.category": "The product's category.",
    "ProductReferenceInput.provider": "The provider that offers the product.",
    "SimpleDuration": "A duration in hours, minutes and seconds.",
    "SimpleDuration.hours": "Whole hours.",
    "SimpleDuration.minutes": "Minutes, 0 to 59.",
    "SimpleDuration.seconds": "Seconds, 0 to 59.",
    "SimpleDurationInput": "A duration in hours, minutes and seconds; above zero where time is "
    "allocated or added.",
    "SimpleDurationInput.hours": "Whole hours, not negative.",
    "SimpleDurationInput.minutes": "Minutes, 0 to 59.",
    "SimpleDurationInput.seconds": "Seconds, 0 to 59.",
    "NamedParameterValue": "The value of one of the application's parameters.",
    "NamedParameterValue.name": "The parameter's name.",
    "NamedParameterValue.value": "Its value.",
    "NamedParameterValueInput": "The value of one of the application's parameters.",
    "NamedParameterValueInput.name": "The parameter's name, as the application lists it.",
    "NamedParameterValueInput.value": "Its value, of the parameter's type.",
    "AppParameterValueInput.file": "For INPUT_FILE and INPUT_DIRECTORY parameters.",
    "AppParameterValueInput.boolean": "For BOOLEAN parameters.",
    "AppParameterValueInput.text": "For TEXT, TEXTAREA and ENUMERATION parameters.",
    "AppParameterValueInput.integer": "For INTEGER parameters.",
    "AppParameterValueInput.floatingPoint": "For FLOATING_POINT parameters.",
    "AppParameterValueInput.peer": "For PEER parameters: another job to reach.",
    "AppParameterValueInput.licenseServer": "For LICENSE_SERVER parameters.",
    "AppParameterValueInput.modules": "For MODULE_LIST parameters.",
    "JobResourceInput.file": "A file or folder to mount.",
    "JobResourceInput.peer": "Another job to reach by host name.",
    "JobResourceInput.network": "A network's id.",
    "JobResourceInput.ingress": "An ingress's id.",
    "JobResourceInput.blockStorage": "A block storage volume's id.",
    "FileValue": "A file or folder.",
    "FileValue.path": "Its path.",
    "FileValue.readOnly": "Whether the job may only read it.",
    "FileValueInput": "A file or folder.",
    "FileValueInput.path": "Its path.",
    "FileValueInput.readOnly": "Mount it read-only.",
    "BooleanValue": "A true or false value.",
    "BooleanValue.boolean": "The value.",
    "TextValue": "A text value.",
    "TextValue.text": "The text.",
    "IntegerValue": "A whole number.",
    "IntegerValue.integer": "The number.",
    "FloatingPointValue": "A number with a fraction.",
    "FloatingPointValue.floatingPoint": "The number.",
    "PeerValue": "Another job, reachable by a host name.",
    "PeerValue.hostname": "The host name it is reachable by.",
    "PeerValue.jobId": "The other job.",
    "PeerValueInput": "Another job, reachable by a host name.",
    "PeerValueInput.hostname": "The host name to reach it by.",
    "PeerValueInput.jobId": "The other job's id.",
    "LicenseServerValue": "A license server.",
    "LicenseServerValue.licenseServerId": "Its id.",
    "BlockStorageValue": "A block storage volume.",
    "BlockStorageValue.blockStorageId": "Its id.",
    "NetworkValue": "A network.",
    "NetworkValue.networkId": "Its id.",
    "IngressValue": "An ingress.",
    "IngressValue.ingressId": "Its id.",
    "ModulesValue": "Software modules to load.",
    "ModulesValue.modules": "The modules' names.",
    "JobIdsInput.ids": "The jobs' ids, 1 to 1000.",
    "ExtendJobsInput": "Time to add to jobs.",
    "ExtendJobsInput.requests": "One request per job, 1 to 1000.",
    "ExtendJobRequest": "Time to add to one job.",
    "ExtendJobRequest.jobId": "The job's id.",
    "JobsPayload.jobs": "The jobs the action was sent for.",
    "JobsPayload.userErrors": "The jobs it was not sent for, and why (`index` is the item's).",
    "UserError.index": "The item of the request this is about (null: the whole request).",
    "UserError.field": "The path of the offending field within the item, e.g. "
    '["parameters", "seconds"].',
    "UserError.code": "What kind of problem it is.",
    "UserError.message": "What is wrong, for people.",
    "UserErrorCode": "Why one item of a request was refused.",
    "UserErrorCode.NOT_FOUND": "No such job, or not one the caller may see.",
    "UserErrorCode.FORBIDDEN": "The caller may see the job but not do this.",
    "UserErrorCode.INVALID_PARAMETER": "A value is missing, of the wrong type or out of range.",
    "UserErrorCode.UNKNOWN_APPLICATION": "No such application or version.",
    "UserErrorCode.UNKNOWN_PRODUCT": "No such product at that provider.",
    "UserErrorCode.NOT_SUPPORTED": "The job's product does not support this.",
    "UserErrorCode.INVALID_STATE": "The job is not in a state that allows this.",
    "UserErrorCode.DUPLICATE_JOB": "An equal job of the caller's has not finished; set "
    "allowDuplicateJob to submit it anyway.",
    "UserErrorCode.TOO_MANY_ITEMS": "A request names more (or fewer) items than allowed.",
    "UserErrorCode.IDEMPOTENCY_KEY_REUSED": "The idempotency key was used for another request.",
    "UserErrorCode.PRECONDITION_FAILED": "The provider refused, or an update's precondition "
    "did not hold.",
    "UserErrorCode.QUOTA_EXCEEDED": "The caller's jobs not yet finished (or their replicas) "
    "would pass the site's per-user limit.",
    "UserErrorCode.NO_UNIX_ACCOUNT": "The job's provider runs jobs as their users' own Unix "
    "accounts, and the caller has none there.",
    # --- identity ------------------------------------------------------------------------------
    "Mutation.updateJobAcl(input)": "The changes, one per job; all of them or none are applied.",
    "Mutation.createAccessToken": "A personal access token for scripts: it stands for the "
    "caller (with the projects their sign-in named) until it expires or is revoked. Needs a "
    "sign-in or static token; an access token cannot make another.",
    "Mutation.createAccessToken(input)": "Its name and lifetime.",
    "Mutation.revokeAccessToken": "Revoke one of the caller's access tokens: it stops working "
    "at once.",
    "Mutation.revokeAccessToken(input)": "Which token.",
    "ProjectRole.PI": "A principal investigator: ADMIN, READ and EDIT on every job of the project.",
    "ProjectRole.ADMIN": "An admin: as a PI, on every job of the project.",
    "ProjectRole.USER": "A member: READ and EDIT on the jobs they created and the jobs shared "
    "with them or a group of theirs.",
    "ProjectMembership": "The caller's place in one project.",
    "ProjectMembership.projectId": "The project's id.",
    "ProjectMembership.title": "The project's title, where the site set one.",
    "ProjectMembership.role": "The caller's role in it.",
    "Viewer": "The caller: a signed-in user, a static user or a personal access token's user.",
    "Viewer.username": "Their username.",
    "Viewer.projects": "The projects they are a member of, with their role in each.",
    "AccessToken": "A personal access token, without its secret.",
    "AccessToken.id": "Its id: revoke it with this.",
    "AccessToken.name": "The name its user gave it.",
    "AccessToken.createdAt": "When it was made.",
    "AccessToken.expiresAt": "When it stops working; null: never.",
    "AccessToken.lastUsedAt": "When it was last used (to the minute); null: never.",
    "AclEntityInput.username": "A user.",
    "AclEntityInput.projectGroup": "A group of the job's project (`all`: every member).",
    "AclProjectGroupInput": "A group of a project.",
    "AclProjectGroupInput.projectId": "The project: the job's own.",
    "AclProjectGroupInput.group": "The group's name, as the site defined it, or `all`.",
    "AclEntryInput": "What one user or group is given on a job.",
    "AclEntryInput.entity": "Who.",
    "AclEntryInput.permissions": "READ and/or EDIT, added to what they have (delete the "
    "entity first to narrow it).",
    "JobAclChange.jobId": "The job.",
    "JobAclChange.added": "Entries to add, or to widen an entity's permissions with.",
    "JobAclChange.deleted": "Entities to take off the ACL.",
    "UpdateJobAclInput": "Changes to jobs' ACLs (needs ADMIN on each job).",
    "UpdateJobAclInput.changes": "One change per job, 1 to 1000.",
    "CreateAccessTokenInput": "A new personal access token.",
    "CreateAccessTokenInput.name": "A name to know it by, 1 to 100 characters.",
    "CreateAccessTokenPayload": "The new token, or why it was not made.",
    "CreateAccessTokenPayload.accessToken": "The token's record (without the secret).",
    "CreateAccessTokenPayload.userErrors": "Why it was not made, if it was not.",
    "RevokeAccessTokenInput": "The token to revoke.",
    "RevokeAccessTokenInput.id": "Its id (`AccessToken.id`).",
    "RevokeAccessTokenPayload": "Whether the token was revoked.",
    "RevokeAccessTokenPayload.revoked": "True once it no longer works.",
    "RevokeAccessTokenPayload.userErrors": "Why it was not, if it was not (NOT_FOUND).",
    # --- catalog -------------------------------------------------------------------------------
    "Application": "A program jobs can run, with the parameters it takes.",
    "Application.name": "Its name.",
    "Application.version": "Its version.",
    "Application.title": "A title for people.",
    "Application.description": "What it does.",
    "Application.parameters": "The parameters a job gives it.",
    "ApplicationParameter": "One parameter of an application.",
    "ApplicationParameter.name": "Its name, as `parameters` in a submit give it.",
    "ApplicationParameter.type": "The kind of value it takes.",
    "ApplicationParameter.optional": "Whether a job may leave it out.",
    "ApplicationParameter.defaultValue": "The value a job gets if it leaves it out.",
    "ApplicationParameter.title": "A title for people.",
    "ApplicationParameter.description": "What it is for.",
    "ApplicationParameter.min": "The smallest value allowed (numbers).",
    "ApplicationParameter.max": "The largest value allowed (numbers).",
    "ApplicationParameterType": "The kind of value a parameter takes.",
    "ApplicationParameterType.INPUT_FILE": "A file.",
    "ApplicationParameterType.INPUT_DIRECTORY": "A folder.",
    "ApplicationParameterType.TEXT": "One line of text.",
    "ApplicationParameterType.TEXTAREA": "Text of several lines.",
    "ApplicationParameterType.INTEGER": "A whole number.",
    "ApplicationParameterType.FLOATING_POINT": "A number with a fraction.",
    "ApplicationParameterType.BOOLEAN": "True or false.",
    "ApplicationParameterType.ENUMERATION": "One of the parameter's `options`.",
    "ApplicationParameterType.PEER": "Another job.",
    "ApplicationParameterType.LICENSE_SERVER": "A license server.",
    "ApplicationParameterType.NETWORK_IP": "A network address.",
    "ApplicationParameterType.INGRESS": "An ingress.",
    "ApplicationParameterType.MODULE_LIST": "Software modules to load.",
    "Product": "A machine type a provider runs jobs on.",
    "Product.reference": "How a job names this product.",
    "Product.name": "Its name, unique within its category at its provider.",
    "Product.category": "Its category.",
    "Product.provider": "The provider that offers it.",
    "Product.description": "What it is, for people.",
    "Product.cpu": "CPU cores per replica.",
    "Product.memoryInGigs": "Memory per replica, in GiB.",
    "Product.gpu": "GPUs per replica.",
    "Product.support": "What jobs on it may do besides running.",
    "Product.network": "Whether its jobs may use the network (the local provider's sandbox).",
    "ComputeSupport": "What jobs on a product may do besides running.",
    "ComputeSupport.logs": "Follow the job's output with `jobLogs`.",
    "ComputeSupport.timeExtension": "Add time with `extendJobs`.",
    "ComputeSupport.suspension": "Pause and continue with `suspendJobs` and `resumeJobs`.",
    "Provider": "A back end that runs jobs: a local host, a Slurm cluster or a remote agent.",
    "Provider.id": "Its id, as products and jobs name it.",
    "Provider.products": "The machine types it offers.",
    # --- providers -----------------------------------------------------------------------------
    "ReportJobUpdatesInput": "A provider's updates on its jobs.",
    "ReportJobUpdatesInput.updates": "The updates, 1 to 1000, applied in order.",
    "ReportJobUpdatesPayload": "What became of each update.",
    "ReportJobUpdatesPayload.results": "One result per update, in request order.",
    "JobUpdateInput": "One change a provider reports on one of its jobs; a field left out means "
    "'no change'.",
    "JobUpdateInput.jobId": "The job.",
    "JobUpdateInput.state": "The job's new state.",
    "JobUpdateInput.status": "A message for people: what happened.",
    "JobUpdateInput.outputFolder": "Where the job's output is.",
    "JobUpdateInput.expectedState": "Apply only if the job is in this state (otherwise SKIPPED).",
    "JobUpdateInput.expectedDifferentState": "Apply only if `state` differs from the job's "
    "(a repeated transition is SKIPPED).",
    "JobUpdateInput.newTimeAllocation": "The job's new total time allocation (confirms an "
    "extension).",
    "JobUpdateInput.allowRestart": "Whether the job may be restarted; only with SUCCESS, "
    "FAILURE or SUSPENDED.",
    "JobUpdateInput.providerGeneratedId": "The provider's own id of the job.",
    "JobUpdateResult": "What became of one reported update.",
    "JobUpdateResult.index": "The update's position in the request.",
    "JobUpdateResult.jobId": "The job it was about.",
    "JobUpdateResult.outcome": "Applied, skipped or rejected.",
    "JobUpdateResult.code": "Why it was skipped or rejected.",
    "JobUpdateResult.message": "Why it was skipped or rejected, for people.",
    "JobUpdateOutcome.APPLIED": "Stored and broadcast.",
    "JobUpdateOutcome.SKIPPED": "A precondition did not hold; nothing was stored.",
    "JobUpdateOutcome.REJECTED": "Refused: not the provider's job, no such job, or invalid.",
    "ReportJobLogsInput": "Output lines of a provider's jobs, for `jobLogs`.",
    "ReportJobLogsInput.lines": "The lines, in the order the jobs wrote them.",
    "ReportJobLogsPayload": "How many lines were taken.",
    "ReportJobLogsPayload.accepted": "The number of lines taken.",
    "ReportJobLogsPayload.userErrors": "The lines refused, and why.",
    "JobLogInput": "One line a job's replica wrote.",
    "JobLogInput.jobId": "The job.",
    "JobLogInput.rank": "The replica that wrote it (0 for the first).",
    "JobLogInput.stdout": "A line of standard output.",
    "JobLogInput.stderr": "A line of standard error.",
    "JobLogInput.channel": "A more specific name for the stream, if any.",
    "JobLogEvent": "One line of a job's output, as `jobLogs` streams it.",
    "JobLogEvent.cursor": "Pass it as `after` to resume after this line.",
    "JobLogEvent.jobId": "The job.",
    "JobLogEvent.rank": "The replica that wrote it (0 for the first).",
    "JobLogEvent.timestamp": "When the gateway received it.",
    "JobLogEvent.stdout": "A line of standard output.",
    "JobLogEvent.stderr": "A line of standard error.",
    "JobLogEvent.channel": "The stream it came on: stdout, stderr or a more specific name.",
    "ProviderCommand.id": "Its id: acknowledge it with `acknowledgeProviderCommands`.",
    "ProviderCommand.cursor": "Pass it as `after` to resume after this command.",
    "ProviderCommand.createdAt": "When the gateway stored it.",
    "ProviderCommand.kind": "What to do.",
    "ProviderCommand.job": "The job to do it to.",
    "ProviderCommandKind": "What a remote provider's agent is asked to do.",
    "ProviderCommandKind.SUBMIT": "Start the job.",
    "ProviderCommandKind.CANCEL": "Stop the job.",
    "ProviderCommandKind.EXTEND": "Add `requestedTime` to the job.",
    "ProviderCommandKind.SUSPEND": "Pause the job.",
    "ProviderCommandKind.RESUME": "Continue the job.",
    "ProviderCommandKind.VERIFY": "Report whether the back end still knows the job.",
    # Interactive sessions (left out with `[sessions] enabled = false`).
    "Mutation.openInteractiveSessions(input)": "The sessions to open, at most 1,000.",
    "OpenInteractiveSessionsInput": "Sessions to open, each of one replica of a running job.",
    "OpenInteractiveSessionsInput.sessions": "The sessions, in the order of their results.",
    "InteractiveSessionRequest": "One session: of which job, which replica, of which type.",
    "InteractiveSessionRequest.jobId": "The job: RUNNING, with EDIT for the caller.",
    "InteractiveSessionRequest.rank": "The replica, from 0.",
    "InteractiveSessionRequest.type": "What to open: the job's web app, a shell in it, or its "
    "desktop.",
    "InteractiveSessionType": "WEB: the job's web app. TERMINAL: a shell inside the job. VNC: "
    "the job's desktop.",
    "InteractiveSessionType.WEB": "The job's web app, through the gateway.",
    "InteractiveSessionType.TERMINAL": "A shell inside the job, in the browser.",
    "InteractiveSessionType.VNC": "The job's desktop, in the browser.",
    "OpenInteractiveSessionsPayload": "The sessions opened, and why the others were not.",
    "OpenInteractiveSessionsPayload.sessions": "The sessions opened, in request order.",
    "OpenInteractiveSessionsPayload.userErrors": "Why each of the others was not opened.",
    "InteractiveSession.jobId": "The job.",
    "InteractiveSession.rank": "The replica.",
    "InteractiveSession.type": "What it opens.",
    "InteractiveSession.expiresAt": "Use the URL before this; afterwards it lasts as long as "
    "the job runs.",
    "ApplicationInterfaces": "What an application serves while it runs, on its `{port}`.",
    "ApplicationInterfaces.web": "A web app (WEB sessions).",
    "ApplicationInterfaces.vnc": "A desktop over VNC (VNC sessions).",
    "ProviderSessionRelay.relayId": "Dial back to /relay/<relayId> on the gateway.",
    "ProviderSessionRelay.rank": "The replica whose side to connect to.",
    "ProviderSessionRelay.type": "Which of the job's sides: its web app, a shell, its desktop.",
    "ProviderCommandKind.OPEN_SESSION": "Relay one connection of an interactive session of "
    "the job (`session` says which): never stored, never acknowledged.",
    "AcknowledgeProviderCommandsInput.ids": "The ids of the commands carried out.",
    "AcknowledgeProviderCommandsPayload": "How many commands were acknowledged.",
    "AcknowledgeProviderCommandsPayload.acknowledged": "The number of commands forgotten.",
}


# What a schema without interactive sessions lacks (`jobgate.schema.build.SESSION_FIELDS`).
SESSION_TYPES = frozenset(
    {
        "OpenInteractiveSessionsInput",
        "InteractiveSessionRequest",
        "InteractiveSessionType",
        "OpenInteractiveSessionsPayload",
        "InteractiveSession",
        "ApplicationInterfaces",
        "ProviderSessionRelay",
    }
)
SESSION_ELEMENTS = frozenset({"Mutation.openInteractiveSessions(input)"})


def _fields(named: object) -> dict[str, object]:
    if isinstance(named, GraphQLObjectType | GraphQLInputObjectType | GraphQLInterfaceType):
        return dict(named.fields)
    return {}


def element(schema: GraphQLSchema, key: str) -> object:
    """The schema element a key names (`KeyError` if none)."""
    type_name, _, rest = key.partition(".")
    named = schema.type_map[type_name]
    if not rest:
        return named
    field_name, _, argument = rest.partition("(")
    if isinstance(named, GraphQLEnumType):
        return named.values[field_name]
    field = _fields(named)[field_name]
    if argument:
        return field.args[argument.rstrip(")")]  # type: ignore[attr-defined]
    return field


def describe(schema: GraphQLSchema) -> None:
    """Give the built schema's elements the descriptions above (those of interactive
    sessions only where the schema serves them)."""
    for key, text in DESCRIPTIONS.items():
        try:
            target = element(schema, key)
        except KeyError:
            if key.split(".")[0] in SESSION_TYPES or key in SESSION_ELEMENTS:
                continue  # left out with `[sessions] enabled = false`
            raise
        assert not target.description, f"{key} is described in the code already"  # type: ignore[attr-defined]
        target.description = text  # type: ignore[attr-defined]
