"""`MongoJobStore`: jobs in MongoDB through PyMongo's `AsyncMongoClient`.

Each job is one document that embeds its updates, so a state change and its stored update are
one guarded single-document write (`version` must still match): two racing writers cannot both
win. Update-log positions come from a counter document. A position is taken before the write
that uses it, so positions can commit out of order or be left unused by a lost race; readers of
the log (the update feed) wait briefly at such gaps instead of skipping past in-flight writes.

Only operators that FerretDB v1 also honours are used: no `$slice` on `$push`, no transactions.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError

from jobgate.domain.job import Job, JobStatus, JobUpdate, UpdateRequest
from jobgate.domain.states import JobState
from jobgate.domain.values import ResourceOwner
from jobgate.errors import IdempotencyKeyReused, StoreUnavailable
from jobgate.storage.base import (
    CreatedJobs,
    JobFilter,
    JobOrder,
    JobPage,
    JobQuery,
    LogEntry,
    LogQuery,
    NewSubmission,
    OrderField,
    PageKey,
    RoundTrips,
    Visibility,
    sort_key,
)
from jobgate.storage.codec import (
    Doc,
    request_from_doc,
    request_to_doc,
    spec_from_doc,
    spec_to_doc,
    status_from_doc,
    status_to_doc,
)
from jobgate.storage.sql_query import ids_to_numbers

log = logging.getLogger(__name__)

ORDER_FIELDS = {
    OrderField.CREATED_AT: "createdAt",
    OrderField.NAME: "nameKey",
    OrderField.CREATED_BY: "createdBy",
    OrderField.STATE: "stateRank",
}


class MongoJobStore:
    """Jobs (with embedded updates), idempotency claims and counters in one MongoDB database."""

    def __init__(self, url: str, *, server_selection_timeout_ms: int = 5000) -> None:
        self.url = url
        self.round_trips = RoundTrips()
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=server_selection_timeout_ms,
            connectTimeoutMS=server_selection_timeout_ms,
            tz_aware=False,
        )
        self._db: AsyncDatabase[Doc] = self._client.get_default_database("jobgate")
        self._jobs: AsyncCollection[Doc] = self._db["jobs"]
        self._submissions: AsyncCollection[Doc] = self._db["submissions"]
        self._counters: AsyncCollection[Doc] = self._db["counters"]
        self._indexes_ready = False
        self._index_lock = asyncio.Lock()

    async def open(self) -> None:
        """Create the indexes; if the server is down, they are created on first use instead."""
        try:
            await self._ensure_indexes()
        except StoreUnavailable as error:
            log.warning("MongoDB is not reachable yet (%s); will retry on first use", error)

    async def close(self) -> None:
        await self._client.close()

    async def _ensure_indexes(self) -> None:
        if self._indexes_ready:
            return
        async with self._index_lock, self._call("create_indexes"):
            if self._indexes_ready:
                return
            jobs = self._jobs
            await jobs.create_index(
                [("createdBy", ASCENDING), ("project", ASCENDING)], name="owner"
            )
            await jobs.create_index([("project", ASCENDING)], name="project")
            await jobs.create_index([("state", ASCENDING)], name="state")
            await jobs.create_index(
                [("provider", ASCENDING), ("state", ASCENDING)], name="provider"
            )
            await jobs.create_index([("createdAt", DESCENDING)], name="created_at")
            await jobs.create_index([("lastSeq", ASCENDING)], name="last_seq")
            await self._submissions.create_index(
                [("owner", ASCENDING), ("key", ASCENDING)], name="idempotency_key", unique=True
            )
            self._indexes_ready = True

    @asynccontextmanager
    async def _call(self, kind: str) -> AsyncIterator[None]:
        """Count one round trip and translate connection failures into `StoreUnavailable`."""
        self.round_trips.add(kind)
        try:
            yield
        except ConnectionFailure as error:
            log.warning("MongoDB is unavailable: %s", error)
            raise StoreUnavailable("the job store (MongoDB) is unavailable") from error

    async def _next_positions(self, counter: str, count: int) -> int:
        """Reserve `count` consecutive numbers of a counter; returns the first."""
        for _attempt in range(3):
            try:
                async with self._call("counter"):
                    doc = await self._counters.find_one_and_update(
                        {"_id": counter},
                        {"$inc": {"value": count}},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
            except DuplicateKeyError:
                # Two first uses raced to create the counter; the loser just increments it.
                continue
            assert doc is not None
            return int(doc["value"]) - count + 1
        raise StoreUnavailable(f"could not take the next number of counter '{counter}'")

    # --- writing ------------------------------------------------------------------------------

    async def create_jobs(self, submission: NewSubmission) -> CreatedJobs:
        await self._ensure_indexes()
        owner_key = f"{submission.owner.created_by}\x00{submission.owner.project or ''}"
        if submission.idempotency_key is not None:
            earlier = await self._earlier_submission(owner_key, submission)
            if earlier is not None:
                return earlier

        count = len(submission.specifications)
        first_number = await self._next_positions("jobs", count)
        first_seq = await self._next_positions("updates", count)
        docs: list[Doc] = []
        for offset, spec in enumerate(submission.specifications):
            number = first_number + offset
            status = JobStatus(time_allocation=spec.time_allocation)
            job = Job(str(number), submission.owner, spec, status, submission.created_at, 1)
            request = UpdateRequest(
                job.id, state=JobState.IN_QUEUE, status=submission.initial_status
            )
            docs.append(
                _job_to_doc(job, [_update_doc(first_seq + offset, job.created_at, request, status)])
            )

        if submission.idempotency_key is not None:
            claim = {
                "owner": owner_key,
                "key": submission.idempotency_key,
                "requestHash": submission.request_hash,
                "jobs": docs,
            }
            try:
                async with self._call("claim"):
                    await self._submissions.insert_one(claim)
            except DuplicateKeyError:
                # Another request with this key won the race: answer with its jobs.
                earlier = await self._earlier_submission(owner_key, submission)
                assert earlier is not None
                return earlier
        await self._insert_missing(docs)
        return CreatedJobs([_job_from_doc(doc) for doc in docs])

    async def _earlier_submission(
        self, owner_key: str, submission: NewSubmission
    ) -> CreatedJobs | None:
        async with self._call("claim"):
            claim = await self._submissions.find_one(
                {"owner": owner_key, "key": submission.idempotency_key}
            )
        if claim is None:
            return None
        if claim["requestHash"] != submission.request_hash:
            raise IdempotencyKeyReused("this idempotency key was used for a different request")
        # A claim is written before its jobs: finish an insert that an earlier crash cut short.
        await self._insert_missing(claim["jobs"])
        jobs = await self.get_jobs([str(doc["_id"]) for doc in claim["jobs"]])
        by_id = {job.id: job for job in jobs}
        return CreatedJobs([by_id[str(doc["_id"])] for doc in claim["jobs"]], replayed=True)

    async def _insert_missing(self, docs: list[Doc]) -> None:
        try:
            async with self._call("insert_jobs"):
                await self._jobs.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            duplicate_key = 11000
            if any(e.get("code") != duplicate_key for e in error.details.get("writeErrors", [])):
                raise

    async def commit_update(
        self, job: Job, request: UpdateRequest, status_after: JobStatus, timestamp: int
    ) -> JobUpdate | None:
        await self._ensure_indexes()
        seq = await self._next_positions("updates", 1)
        async with self._call("commit_update"):
            result = await self._jobs.update_one(
                {"_id": int(job.id), "version": job.version},
                {
                    "$set": {
                        "state": status_after.state.value,
                        "stateRank": status_after.state.lifecycle_rank,
                        "providerGeneratedId": status_after.provider_generated_id,
                        "status": status_to_doc(status_after),
                        "lastSeq": seq,
                    },
                    "$inc": {"version": 1},
                    "$push": {"updates": _update_doc(seq, timestamp, request, status_after)},
                },
            )
        if result.matched_count != 1:
            return None
        return JobUpdate(seq, job.id, timestamp, request, status_after)

    # --- reading ------------------------------------------------------------------------------

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        numbers = ids_to_numbers(job_ids)
        if not numbers:
            return []
        async with self._call("get_jobs"):
            docs = await self._jobs.find(
                {"_id": {"$in": numbers}}, projection={"updates": False}
            ).to_list(None)
        return [_job_from_doc(doc) for doc in docs]

    async def find_jobs(self, query: JobQuery) -> JobPage:
        await self._ensure_indexes()
        conditions = [
            _visibility_query(query.visibility),
            _filter_query(query.filter),
            _page_query(query.order, query.after),
        ]
        direction = DESCENDING if query.order.descending else ASCENDING
        async with self._call("find_jobs"):
            docs = (
                await self._jobs.find({"$and": conditions}, projection={"updates": False})
                .sort([(ORDER_FIELDS[query.order.field], direction), ("_id", direction)])
                .limit(query.limit + 1)
                .to_list(None)
            )
        jobs = [_job_from_doc(doc) for doc in docs[: query.limit]]
        return JobPage(jobs, has_next=len(docs) > query.limit)

    async def count_jobs(self, visibility: Visibility, job_filter: JobFilter) -> int:
        async with self._call("count_jobs"):
            return await self._jobs.count_documents(
                {"$and": [_visibility_query(visibility), _filter_query(job_filter)]}
            )

    async def updates_of(
        self, job_ids: Sequence[str], last: int | None = None
    ) -> dict[str, list[JobUpdate]]:
        numbers = ids_to_numbers(job_ids)
        result: dict[str, list[JobUpdate]] = {str(n): [] for n in numbers}
        if not numbers:
            return result
        async with self._call("updates_of"):
            docs = await self._jobs.find(
                {"_id": {"$in": numbers}}, projection={"updates": True}
            ).to_list(None)
        for doc in docs:
            job_id = str(doc["_id"])
            updates = sorted(
                (_update_from_doc(job_id, u) for u in doc["updates"]), key=lambda u: u.seq
            )
            result[job_id] = updates if last is None else updates[-last:] if last > 0 else []
        return result

    async def latest_seq(self) -> int:
        async with self._call("latest"):
            doc = await self._jobs.find_one(
                {"lastSeq": {"$exists": True}},
                projection={"lastSeq": True},
                sort=[("lastSeq", DESCENDING)],
            )
        return 0 if doc is None else int(doc["lastSeq"])

    async def read_log(self, query: LogQuery) -> list[LogEntry]:
        await self._ensure_indexes()
        job_match: list[Doc] = [{"lastSeq": {"$gt": query.after}}]
        if query.job_ids is not None:
            job_match.append({"_id": {"$in": ids_to_numbers(query.job_ids)}})
        if query.visibility is not None:
            job_match.append(_visibility_query(query.visibility))
        seq_range: Doc = {"$gt": query.after}
        if query.up_to is not None:
            seq_range["$lte"] = query.up_to
        pipeline: list[Doc] = [
            {"$match": {"$and": job_match}},
            {"$unwind": "$updates"},
            {"$match": {"updates.seq": seq_range}},
            {"$sort": {"updates.seq": 1}},
            {"$limit": query.limit},
        ]
        async with self._call("read_log"):
            cursor = await self._jobs.aggregate(pipeline)
            docs = await cursor.to_list(None)
        # FerretDB v1's $unwind keeps only `_id` and the unwound field, so the jobs' other fields
        # come from a second query.
        jobs = {job.id: job for job in await self.get_jobs([str(doc["_id"]) for doc in docs])}
        entries: list[LogEntry] = []
        for doc in docs:
            update = _update_from_doc(str(doc["_id"]), doc["updates"])
            job = jobs[update.job_id]
            as_of = Job(job.id, job.owner, job.specification, update.status_after, job.created_at)
            entries.append(LogEntry(update, as_of))
        return entries


def _job_to_doc(job: Job, updates: list[Doc]) -> Doc:
    spec = job.specification
    return {
        "_id": int(job.id),
        "idText": job.id,
        "createdBy": job.owner.created_by,
        "project": job.owner.project,
        "provider": spec.product.provider,
        "productId": spec.product.id,
        "productCategory": spec.product.category,
        "application": spec.application.name,
        "name": spec.name,
        "nameKey": sort_key(job, OrderField.NAME),
        "state": job.status.state.value,
        "stateRank": job.status.state.lifecycle_rank,
        "createdAt": job.created_at,
        "providerGeneratedId": job.status.provider_generated_id,
        "version": job.version,
        "spec": spec_to_doc(spec),
        "status": status_to_doc(job.status),
        "lastSeq": max(u["seq"] for u in updates),
        "updates": updates,
    }


def _job_from_doc(doc: Doc) -> Job:
    return Job(
        id=str(doc["_id"]),
        owner=ResourceOwner(doc["createdBy"], doc["project"]),
        specification=spec_from_doc(doc["spec"]),
        status=status_from_doc(doc["status"]),
        created_at=doc["createdAt"],
        version=doc["version"],
    )


def _update_doc(seq: int, timestamp: int, request: UpdateRequest, status_after: JobStatus) -> Doc:
    return {
        "seq": seq,
        "timestamp": timestamp,
        "request": request_to_doc(request),
        "statusAfter": status_to_doc(status_after),
    }


def _update_from_doc(job_id: str, doc: Doc) -> JobUpdate:
    return JobUpdate(
        seq=doc["seq"],
        job_id=job_id,
        timestamp=doc["timestamp"],
        request=request_from_doc(job_id, doc["request"]),
        status_after=status_from_doc(doc["statusAfter"]),
    )


def _visibility_query(visibility: Visibility) -> Doc:
    if visibility.everything:
        return {}
    if visibility.provider is not None:
        return {"provider": visibility.provider}
    personal: Doc = {"project": None, "createdBy": visibility.username}
    if not visibility.projects:
        return personal
    return {"$or": [personal, {"project": {"$in": sorted(visibility.projects)}}]}


def _filter_query(job_filter: JobFilter) -> Doc:
    conditions: list[Doc] = []
    equals = {
        "application": job_filter.application,
        "createdBy": job_filter.created_by,
        "project": job_filter.project,
        "provider": job_filter.provider,
        "productId": job_filter.product_id,
        "productCategory": job_filter.product_category,
        "providerGeneratedId": job_filter.provider_generated_id,
    }
    conditions.extend({key: value} for key, value in equals.items() if value is not None)
    if job_filter.states is not None:
        conditions.append({"state": {"$in": sorted(job_filter.states)}})
    if job_filter.created_after is not None:
        conditions.append({"createdAt": {"$gte": job_filter.created_after}})
    if job_filter.created_before is not None:
        conditions.append({"createdAt": {"$lte": job_filter.created_before}})
    if job_filter.ids is not None:
        conditions.append({"_id": {"$in": ids_to_numbers(job_filter.ids)}})
    if job_filter.query:
        pattern = {"$regex": re.escape(job_filter.query), "$options": "i"}
        conditions.append(
            {"$or": [{"name": pattern}, {"application": pattern}, {"idText": pattern}]}
        )
    return {"$and": conditions} if conditions else {}


def _page_query(order: JobOrder, after: PageKey | None) -> Doc:
    if after is None:
        return {}
    field = ORDER_FIELDS[order.field]
    op = "$lt" if order.descending else "$gt"
    return {
        "$or": [
            {field: {op: after.value}},
            {field: after.value, "_id": {op: after.job_number}},
        ]
    }
