import Logging
import ServiceLifecycle
import Tracing

/// The relay loop proper: read a batch of held lanes in id order, build envelopes, produce them all,
/// wait for every delivery report, then settle the batch with at most three fenced statements
/// (delete the delivered, reschedule the retriable, dead-letter the poison).
///
/// While a full batch waits for its delivery reports, the next batch is read ahead (its rows are
/// the next ones of the same lanes, the in-flight ids left out), so the database read no longer
/// adds to every batch's time. The read-ahead is only *read*: nothing of it is produced before the
/// batch in flight is settled, so at most one batch per lane is ever in flight (the duplicate
/// bound after a crash). It is dropped whenever it could be stale — a delivery of the batch in
/// flight failed (its retry must be recorded before any later message of its key is read) or a
/// lane changed hands — and its rows are simply read again.
struct BatchPipeline: Sendable {
    let store: RelayStore
    let table: LeaseTable
    let doorbell: Doorbell
    let producers: ProducerSlot
    let builder: EnvelopeBuilder
    let configuration: RelayConfiguration
    let logger: Logger
    /// Observation only: counts, timings and the health `/readyz` reads; never changes a decision.
    let metrics: RelayMetrics
    let health: RelayHealth
    /// Spans of batches and messages (nil: no tracer, and nothing of tracing runs).
    var tracing: RelayTracing? = nil

    enum BatchOutcome: Equatable {
        /// Nothing to do: no lanes held or no message ready.
        case idle
        /// A batch was settled (the loop reads again at once).
        case settled
        /// Deliveries failed because the broker is unreachable; nothing was charged to the messages.
        case brokerOutage(String)
        /// Deliveries failed because the producer's idempotence state is broken (fatal-class codes):
        /// nothing was charged; the producer is replaced before anything more is sent.
        case producerUnusable(String)
    }

    /// Rows of the next batch, read while the previous one was being delivered, with the leases
    /// they were read under.
    struct ReadAhead: Sendable {
        var leases: [LaneLease]
        /// The read itself, for the cursors to record (`LaneCursors.observe`).
        var read: BatchRead
        /// How it walked the lanes (the cursors record a per-lane read per lane).
        var shape: ReadShape = .idOrder(start: 0)
        /// Each row's envelope, built while the previous batch was delivered (empty: build later).
        var built: [EnvelopeBuilder.Outcome] = []

        var rows: [PendingMessage] { read.rows }

        /// The rows still valid for a batch holding `current`, with their envelopes if built: rows
        /// of lanes held throughout with the same epoch (so nobody else touched them). Lanes
        /// newly held are read next time.
        func entries(validFor current: [LaneLease]) -> [(row: PendingMessage, built: EnvelopeBuilder.Outcome?)] {
            let all = rows.indices.map { (row: rows[$0], built: built.indices.contains($0) ? built[$0] : nil) }
            if current == leases { return all }
            let lanes = Set(Set(leases).intersection(current).map(\.lane))
            return all.filter { lanes.contains($0.row.lane) }
        }
    }

    /// Runs until a graceful shutdown (finishing the batch in flight) or, with `stopWhenDrained`,
    /// until the outbox is empty.
    ///
    /// Every await in it is bounded: database statements by `BoundedDatabase` (abandoned past the
    /// deadline), deliveries by librdkafka's message timeout. Each completed step counts as
    /// progress for the watchdog, so a slow but working database (every statement near its
    /// timeout) never looks wedged; only a step that outlives every bound does.
    func run() async {
        var stragglers = Stragglers()
        var cursors = LaneCursors()
        await runLoop(&stragglers, &cursors)
        await finish(&stragglers, &cursors)
    }

    private func runLoop(_ stragglers: inout Stragglers, _ cursors: inout LaneCursors) async {
        var databaseBackoff = OutageBackoff()
        var readAhead: ReadAhead?
        // Outages in a row after which the broker answered at once: deliveries fail while the
        // broker is there, so the producer itself is stuck (see `ProducerSlot.replace`).
        var stuckStrikes = 0
        var replacementBackoff = OutageBackoff()
        var idle = IdleSchedule()
        // A delivered batch whose settle statements failed: settled before anything is read.
        var owed: Settlement?
        defer {
            if owed != nil {
                logger.warning("stopping with a delivered batch unsettled; its rows are published again by the next owner")
            }
        }
        if health.snapshot.brokerOutageSince != nil {
            // Not reached at start-up (see `RelayService.run`): no lane is held until it answers.
            await waitForBroker(firstError: "no answer from the broker at start-up")
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            table.recordPipelineProgress()
            do {
                if var settlement = owed {
                    try await settle(&settlement, &cursors)
                    owed = nil
                    health.databaseAnswered()
                    databaseBackoff.reset()
                    logger.info("settled the delivered batch once the database answered again")
                }
                while let group = stragglers.takeFirstComplete() {
                    // The read-ahead may hold later rows of its keys, read while they were parked:
                    // once unparked those rows must come after the settle's retries, so read afresh.
                    readAhead = nil
                    try await settleStragglers(group, &cursors)
                }
                let ahead = readAhead
                readAhead = nil
                let (outcome, next) = try await publishOneBatch(readAhead: ahead, stragglers: &stragglers, cursors: &cursors)
                readAhead = next
                // `.idle` may not have asked the database (no lanes held): the monitor covers that case.
                if outcome != .idle {
                    health.databaseAnswered()
                    if idle.foundWork() {
                        try await store.wantWakeup(false, logger: logger)
                        idle.wakeupCleared()
                    }
                }
                switch outcome {
                case .settled:
                    health.brokerReachable()
                    databaseBackoff.reset()
                    replacementBackoff.reset()
                    stuckStrikes = 0
                case .idle:
                    databaseBackoff.reset()
                    if configuration.stopWhenDrained, stragglers.isEmpty, try await store.isEmpty(logger: logger) {
                        logger.info("outbox is empty; stopping as asked (--stop-when-drained)")
                        return
                    }
                    // Holding no lane, nothing is read: the lease keeper rings when it claims some.
                    var wait = configuration.pollInterval
                    if !table.all.isEmpty {
                        switch idle.idle(now: .now, pollInterval: configuration.pollInterval) {
                        case .askForWakeup:
                            try await store.wantWakeup(true, logger: logger)
                            idle.askedForWakeup()
                            continue
                        case .wait(let next):
                            wait = next
                        }
                    }
                    // Stragglers' reports ring no doorbell: look for them often while there are some.
                    await doorbell.wait(timeout: stragglers.isEmpty ? wait : min(wait, .milliseconds(100)))
                case .producerUnusable(let error):
                    // Sending more on this producer id could only fail, or be written out of order.
                    // Backed off, so a broker that refuses every new producer too is not hammered.
                    await producers.replace(because: error)
                    databaseBackoff.reset()
                    stuckStrikes = 0
                    await doorbell.wait(timeout: replacementBackoff.next())
                case .brokerOutage(let error):
                    let answeredAtOnce = await waitForBroker(firstError: error)
                    stuckStrikes = answeredAtOnce ? stuckStrikes + 1 : 0
                    if stuckStrikes >= Self.stuckProducerStrikes {
                        stuckStrikes = 0
                        await producers.replace(
                            because: "\(Self.stuckProducerStrikes) outages in a row while the broker answered at once; last: \(error)")
                    }
                }
            } catch {
                var message: Logger.Message = "database unavailable; retrying"
                if let failed = error as? SettlementFailed {
                    owed = failed.remaining.isDone ? nil : failed.remaining
                    message = "could not settle a delivered batch; retrying the settlement before reading more"
                }
                health.databaseFailed(String(reflecting: error))
                let delay = databaseBackoff.next()
                logger.warning(message, metadata: ["error": "\(String(reflecting: error))", "retry_in": "\(delay)"])
                await doorbell.wait(timeout: delay)
            }
        }
    }

    /// One batch: read (or take the read-ahead), produce, settle. Returns the outcome and the rows
    /// read ahead for the next batch, if any.
    func publishOneBatch(
        readAhead: ReadAhead? = nil, stragglers: inout Stragglers, cursors: inout LaneCursors
    ) async throws -> (BatchOutcome, ReadAhead?) {
        let clock = ContinuousClock()
        let started = clock.now
        let leases = table.beginBatch(now: .now, horizon: configuration.selfFencingMargin)
        defer { table.endBatch() }
        cursors.sync(with: table.all)
        guard !leases.isEmpty else { return (.idle, nil) }
        let (store, logger, batchSize, maxBytes) = (self.store, self.logger, configuration.batchSize, configuration.batchMaxBytes)
        let lanes = leases.map(\.lane)
        // Nothing of a key with a straggler in flight, nor the stragglers themselves (see `Stragglers`).
        let parked = stragglers.parkedKeys
        let stragglerIDs = stragglers.ids
        var entries = readAhead?.entries(validFor: leases) ?? []
        // Whether the read this batch comes from stopped at one of its limits, rows or bytes (a
        // backlog); a batch of `batchSize` rows comes from such a read.
        var stoppedShort = readAhead?.read.stoppedShort(limit: batchSize) ?? false
        if !stragglers.isEmpty {
            let excluded = Set(stragglerIDs)
            entries = entries.filter { entry in
                !excluded.contains(entry.row.id) && !(entry.row.key.map(parked.contains) ?? false)
            }
        }
        let tracing = self.tracing
        let readStarted = tracing.map { _ in DefaultTracerClock.now }
        let readAheadUsed = !entries.isEmpty
        if entries.isEmpty {
            let shape = cursors.shape(for: lanes, limit: batchSize, walk: configuration.readWalk)
            let fresh = try await store.readBatch(
                limit: batchSize, maxBytes: maxBytes, shape: shape, lanes: lanes, excluding: stragglerIDs, parked: Array(parked),
                logger: logger)
            stoppedShort = fresh.stoppedShort(limit: batchSize)
            table.recordPipelineProgress()
            cursors.observe(fresh, lanes: lanes, shape: shape, limit: batchSize)
            entries = fresh.rows.map { (row: $0, built: nil) }
        }
        guard !entries.isEmpty else { return (.idle, nil) }
        // Traced from the read on, once it found rows: an idle poll makes no span.
        let batchSpan = readStarted.flatMap { started in tracing?.startBatch(at: started, read: entries.count, readAhead: readAheadUsed) }
        defer { batchSpan?.end() }
        // The read may have taken long (a slow or frozen link): nothing of a lane whose lease does
        // not outlast the self-fencing margin from now is handed to the producer — its rows are
        // the next owner's. (Checked at the start of the batch too; this closes the read's gap.)
        let sendable = Set(table.stillValid(leases, now: .now + configuration.selfFencingMargin).map(\.lane))
        if sendable.count < leases.count {
            logger.warning(
                "lease ran out while reading a batch; not publishing those lanes",
                metadata: ["lanes": "\(Set(lanes).subtracting(sendable).sorted())"])
            entries = entries.filter { sendable.contains($0.row.lane) }
            guard !entries.isEmpty else { return (.idle, nil) }
        }
        let rows = entries.map(\.row)
        // From here every row is finished by the settle, stays in flight as a straggler, or is
        // handed back to the cursors to be read again.
        cursors.sending(rows.map(\.id))
        var stragglersOfThisBatch: Set<Int64> = []
        defer { cursors.returned(rows.lazy.map(\.id).filter { !stragglersOfThisBatch.contains($0) }) }

        var records: [KafkaRecord] = []
        var rowResults: [(row: PendingMessage, result: SettlePlan.RowResult)] = []
        var recordRows: [Int] = []  // the index in rowResults of each record
        records.reserveCapacity(rows.count)
        rowResults.reserveCapacity(rows.count)
        for (row, built) in entries {
            switch built ?? builder.build(row) {
            case .record(let record, _):
                recordRows.append(rowResults.count)
                records.append(record)
                rowResults.append((row, .delivered))
            case .poison(let reason, let error):
                rowResults.append((row, .poison(reason, error)))
            }
        }

        let read = clock.now
        // A full batch (by rows or bytes) suggests a backlog: read the next one while this one is
        // delivered, so the read hides behind the delivery. Not after a partial batch: under a
        // trickle a read-ahead would be taken before the rows committed during the delivery, which
        // would then wait one more batch; a fresh read after the settle picks them up at once. A
        // failed read-ahead costs nothing but the overlap (the next batch reads again and reports
        // the error through the loop's usual database back-off).
        let inFlight = rows.map(\.id) + stragglerIDs
        let full = stoppedShort
        let builder = self.builder
        let aheadShape = cursors.shape(for: lanes, limit: batchSize, walk: configuration.readWalk)
        // The read-ahead also builds its envelopes, on another thread while this batch waits.
        @Sendable func readNext() async -> ReadAhead? {
            guard
                let next = try? await store.readBatch(
                    limit: batchSize, maxBytes: maxBytes, shape: aheadShape, lanes: lanes, excluding: inFlight, parked: Array(parked),
                    logger: logger)
            else { return nil }
            return ReadAhead(leases: leases, read: next, shape: aheadShape, built: next.rows.map(builder.build))
        }
        async let ahead: ReadAhead? = full ? readNext() : nil
        let sentAt = batchSpan.map { _ in DefaultTracerClock.now }
        // Publishing is fenced like writing: the send gives up (purging what librdkafka still
        // holds, see `KafkaProducer.send(_:until:abandonWhen:)`) as soon as a lane of the batch
        // is about to pass its local deadline or was lost to a renewal, so nothing of a lane
        // reaches the broker once another relay may own it.
        let (table, producer) = (self.table, producers.current)
        let budget = batchSize - stragglers.count
        let report =
            records.isEmpty
            ? SendReport(results: [], gaveUp: nil)
            : await producer.send(
                records, until: .now + producer.configuration.messageTimeout,
                stragglers: budget > 0
                    ? StragglerPolicy(grace: Self.stragglerGrace(deliveryTimeout: producer.configuration.messageTimeout), budget: budget)
                    : nil,
                abandonWhen: {
                    let valid = table.stillValid(leases, now: .now + Self.publishFenceLead)
                    guard valid.count < leases.count else { return nil }
                    return "lane lease running out: \(Set(leases).subtracting(valid).map(\.lane).sorted())"
                })
        table.recordPipelineProgress()
        let producedAtClock = clock.now
        for (index, result) in zip(recordRows, report.results) {
            switch result {
            case .failure(let error)?: rowResults[index].result = .failed(error)
            case nil: rowResults[index].result = .inFlight
            case .success?: break
            }
        }
        let plan = SettlePlan(rowResults, retry: configuration.retry)
        if let outstanding = report.outstanding {
            let group = Stragglers.Group(
                leases: leases, rows: outstanding.indices.map { rowResults[recordRows[$0]].row }, deliveries: outstanding,
                since: .now, blockedKeys: plan.keysBlockingInFlight,
                traced: batchSpan.flatMap { span in sentAt.map { Stragglers.TracedBatch(batch: span, sentAt: $0) } })
            table.beginStragglers(lanes: group.lanes)
            stragglers.add(group)
            stragglersOfThisBatch = Set(group.rows.map(\.id))
            logger.warning(
                "records without a delivery report long after the rest of their batch had one (a partition without a reachable leader?); their keys wait for them, the others go on",
                metadata: [
                    "records": "\(group.rows.count)", "keys": "\(Set(group.rows.compactMap(\.key)).count)",
                    "topics": "\(Set(group.rows.map(\.topic)).sorted())", "in_flight_total": "\(stragglers.count)",
                ])
        }
        if !plan.heldBack.isEmpty {
            logger.warning(
                "delivered messages behind an earlier undelivered message of their key; leaving them to be published again after it",
                metadata: ["count": "\(plan.heldBack.count)"])
        }
        let (delivered, retries, deadLetters) = (plan.delivered, plan.retries, plan.deadLetters)
        var settlement = Settlement(leases: leases, delivered: delivered.map(\.id), deadLetters: deadLetters, retries: retries)
        let settleSpan = batchSpan.flatMap { tracing?.startStep("outbox.settle", of: $0) }
        do {
            try await settle(&settlement, &cursors)
            settleSpan?.end()
        } catch {
            settleSpan?.recordError(error)
            settleSpan?.setStatus(SpanStatus(code: .error))
            settleSpan?.end()
            throw error
        }
        if let tracing, let batchSpan, let sentAt {
            let partitions = RelayTracing.partitions(of: recordRows.lazy.map { rowResults[$0].row }, report.partitions)
            tracing.recordMessages(rows, plan: plan, source: builder.source, batch: batchSpan, sentAt: sentAt, partitions: partitions)
        }
        logger.debug(
            "batch settled",
            metadata: [
                "read": "\(rows.count)", "delivered": "\(delivered.count)", "retried": "\(retries.count)",
                "dead_lettered": "\(deadLetters.count)",
                "read_ms": "\((read - started).milliseconds)", "produce_ms": "\((producedAtClock - read).milliseconds)",
                "settle_ms": "\((clock.now - producedAtClock).milliseconds)",
            ])
        metrics.batchSettled(
            read: rows.count, delivered: delivered, retried: retries.count, deadLettered: deadLetters.map(\.reason))
        // Awaited in every case, so the read-ahead never outlives its batch. Recorded by the
        // cursors even when it is dropped below: its rows then stay open and are read again.
        let aheadBatch = await ahead
        if let aheadBatch {
            cursors.observe(aheadBatch.read, lanes: lanes, shape: aheadBatch.shape, limit: batchSize)
        }
        // A send given up because a lease ran out is not the broker's fault: the lanes left are
        // read again at once (no read-ahead: the purged rows come first).
        if case .abandoned = report.gaveUp { return (.settled, nil) }
        if let outage = plan.outage {
            let what = "\(outage.name): \(outage.message)"
            // The first outage may be a purge that followed the fatal error: ask the producer too.
            let fatal = producer.fatalError
            let unusable = outage.requiresNewProducer || fatal != nil
            return (unusable ? .producerUnusable(fatal.map { "fatal error: \($0)" } ?? what) : .brokerOutage(what), nil)
        }
        // After a retry the read-ahead may hold later messages of the retried key: read afresh,
        // so the database's retry hold applies. Lanes that left during the batch are dropped.
        // Held-back rows behind a straggler are of parked keys, which the next batch filters out of
        // the read-ahead; any other held-back row must be read again before the rest of its key.
        let nowParked = stragglers.parkedKeys
        let heldBackIDs = Set(plan.heldBack)
        let heldBackUnparked = rows.contains { heldBackIDs.contains($0.id) && !($0.key.map(nowParked.contains) ?? false) }
        let next: ReadAhead? =
            if retries.isEmpty, !heldBackUnparked, settlement.lostLanes.isEmpty,
                table.stillValid(leases, now: .now).count == leases.count, let aheadBatch, !aheadBatch.rows.isEmpty
            {
                aheadBatch
            } else {
                nil
            }
        return (.settled, next)
    }

    /// Runs the statements `settlement` still owes on the lanes still held (by epoch and local
    /// deadline; the others' rows stay for their new owner), clearing each part as it lands.
    ///
    /// A lane that does not pass a statement's fence was taken over behind this relay's back
    /// (before its next renewal could tell): it is dropped from the lease table at once and the
    /// settlement marked, so the caller reads nothing ahead and no later batch reads that lane —
    /// otherwise its rows, never deleted by the fenced ack, would be published again batch after
    /// batch until the renewal.
    ///
    /// Throws ``SettlementFailed`` with what is still owed when a statement fails.
    func settle(_ settlement: inout Settlement, _ cursors: inout LaneCursors) async throws {
        do {
            try await settleStatements(&settlement, &cursors)
        } catch {
            throw SettlementFailed(remaining: settlement, underlying: error)
        }
    }

    private func settleStatements(_ settlement: inout Settlement, _ cursors: inout LaneCursors) async throws {
        var writable = table.stillValid(settlement.leases, now: .now)
        if writable.count < settlement.leases.count {
            logger.warning(
                "lease ran out during a batch; leaving its rows to the next owner",
                metadata: ["lanes": "\(Set(settlement.leases.map(\.lane)).subtracting(writable.map(\.lane)).sorted())"])
            settlement.leases = writable
        }
        // After each statement: the rows it wrote (on the lanes that passed its fence) are done
        // with, its transaction id bounds the frontier, and lanes that failed the fence are dropped.
        func checkFence(_ write: FencedWrite, wrote ids: [Int64]) {
            cursors.finished(ids, lanes: write.lanesHeld)
            if let transaction = write.transactionID { cursors.wrote(transaction: transaction) }
            let lost = Set(writable.map(\.lane)).subtracting(write.lanesHeld)
            guard !lost.isEmpty else { return }
            table.remove(Array(lost))
            metrics.lanesLost.increment(by: lost.count)
            settlement.lostLanes.formUnion(lost)
            writable = writable.filter { !lost.contains($0.lane) }
            settlement.leases = writable
            logger.warning(
                "lost lane leases: a fenced write found them taken over behind this relay's back; dropped them (their rows are the new owner's)",
                metadata: ["lanes": "\(lost.sorted())"])
        }
        guard !writable.isEmpty else {
            settlement.clear()
            return
        }
        if !settlement.delivered.isEmpty {
            checkFence(try await store.ack(ids: settlement.delivered, leases: writable, logger: logger), wrote: settlement.delivered)
            settlement.delivered = []
            table.recordPipelineProgress()
        }
        if !settlement.deadLetters.isEmpty, !writable.isEmpty {
            let deadLetters = settlement.deadLetters
            let moved = try await store.deadLetter(deadLetters, leases: writable, logger: logger)
            checkFence(moved, wrote: deadLetters.map(\.id))
            settlement.deadLetters = []
            table.recordPipelineProgress()
            logger.warning(
                "moved poison messages to the dead-letter table",
                metadata: [
                    "count": "\(moved.rows)",
                    "reasons": "\(Dictionary(grouping: deadLetters, by: \.reason.rawValue).mapValues(\.count))",
                ])
        }
        if !settlement.retries.isEmpty, !writable.isEmpty {
            let retries = settlement.retries
            checkFence(try await store.retry(retries, leases: writable, logger: logger), wrote: retries.map(\.id))
            settlement.retries = []
            table.recordPipelineProgress()
            logger.info("scheduled retries", metadata: ["count": "\(retries.count)", "first_error": "\(retries[0].error)"])
        }
        if writable.isEmpty { settlement.clear() }
    }

    /// Settles stragglers whose every report is in, like the batch they belong to would have been:
    /// delivered rows deleted, failed ones retried, dead-lettered or left (an outage), all fenced by
    /// that batch's leases. Their keys are read again from the next batch on.
    private func settleStragglers(_ group: Stragglers.Group, _ cursors: inout LaneCursors) async throws {
        let results = await group.deliveries.results()
        // Whatever the settle does not finish is read again; and the rows of their keys that reads
        // passed while the keys were parked are read again, from the group's first row of each lane.
        defer {
            cursors.returned(group.rows.map(\.id))
            for (lane, rows) in Dictionary(grouping: group.rows, by: \.lane) {
                cursors.rewind(lane: lane, before: rows.reduce(Int64.max) { min($0, $1.id) })
            }
        }
        // Nothing of the group is in flight any more: its lanes may be handed back again.
        table.endStragglers(lanes: group.lanes)
        let plan = SettlePlan(
            zip(group.rows, results).map { row, result in
                switch result {
                case .success: (row, .delivered)
                case .failure(let error): (row, .failed(error))
                }
            }, retry: configuration.retry, blockedKeys: group.blockedKeys)
        var settlement = Settlement(
            leases: group.leases, delivered: plan.delivered.map(\.id), deadLetters: plan.deadLetters, retries: plan.retries)
        logger.info(
            "records left in flight have their delivery reports",
            metadata: [
                "records": "\(group.rows.count)", "delivered": "\(plan.delivered.count)", "retried": "\(plan.retries.count)",
                "dead_lettered": "\(plan.deadLetters.count)", "left": "\(plan.left.count + plan.heldBack.count)",
                "in_flight_for": "\(ContinuousClock.now - group.since)",
            ])
        metrics.batchSettled(
            read: 0, delivered: plan.delivered, retried: plan.retries.count, deadLettered: plan.deadLetters.map(\.reason))
        try await settle(&settlement, &cursors)
        if let tracing, let traced = group.traced {
            tracing.recordMessages(
                group.rows, plan: plan, source: builder.source, batch: traced.batch, sentAt: traced.sentAt,
                partitions: RelayTracing.partitions(of: group.rows, group.deliveries.partitions()), straggled: true)
        }
        // Only the producer they were on, if it is still the current one.
        if let outage = plan.outage, outage.requiresNewProducer, group.deliveries.producer === producers.current {
            await producers.replace(because: "\(outage.name): \(outage.message)")
        }
    }

    /// At a stop: waits a little for the stragglers' reports, gives up on the rest (purging), and
    /// settles what came back, so no delivered row is published again needlessly and nothing of this
    /// relay is in flight once its lanes are released.
    private func finish(_ stragglers: inout Stragglers, _ cursors: inout LaneCursors) async {
        guard !stragglers.isEmpty else { return }
        let until = ContinuousClock.now + Self.stragglerStopWait
        while !stragglers.allComplete, ContinuousClock.now < until, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
        let groups = stragglers.takeAll()
        if !groups.allSatisfy(\.deliveries.isComplete) {
            logger.warning(
                "stopping with records still in flight; purged them (their rows are published again by the next owner)",
                metadata: ["records": "\(groups.reduce(0) { $0 + $1.rows.count })"])
            for group in groups { group.deliveries.purge() }
        }
        for group in groups {
            do {
                try await settleStragglers(group, &cursors)
            } catch {
                logger.warning(
                    "could not settle records left in flight; their rows are published again by the next owner",
                    metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    /// How long a stop waits for stragglers' reports before purging them.
    static let stragglerStopWait = Duration.seconds(5)

    /// How long a batch waits for its last records once the others had their delivery reports and
    /// nothing arrived since: past it they are stragglers. A second (a third of short delivery
    /// timeouts): far beyond the spread of reports within a healthy batch (milliseconds), far
    /// below the delivery timeout every batch would otherwise wait.
    static func stragglerGrace(deliveryTimeout: Duration) -> Duration {
        min(.seconds(1), deliveryTimeout / 3)
    }

    /// How long before a lane's local deadline its batch's send gives up: enough for the purge to
    /// take effect before the deadline, which is itself a safety margin before the database lets
    /// another relay take the lane.
    static let publishFenceLead = Duration.milliseconds(250)

    /// Outages in a row with the broker answering at once before the producer is replaced.
    static let stuckProducerStrikes = 2

    /// Pauses publishing until the broker answers again; no attempt is charged meanwhile. Returns
    /// whether it answered at the first probe (the outage was not the broker's).
    @discardableResult
    private func waitForBroker(firstError: String) async -> Bool {
        health.brokerUnreachable(firstError)
        metrics.brokerUp.record(0)
        var backoff = OutageBackoff()
        let started = ContinuousClock.now
        var firstProbe = true
        var lastWarning: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            table.recordPipelineProgress()
            let replaced = await producers.replaceIfFatal()
            let producer = producers.current
            if await producer.brokerIsReachable(timeout: .seconds(2)) {
                if lastWarning != nil {
                    logger.info("broker reachable again; resuming", metadata: ["paused": "\(ContinuousClock.now - started)"])
                }
                health.brokerReachable()
                metrics.brokerUp.record(1)
                return firstProbe && !replaced
            }
            // Warned after the first failed probe (so librdkafka's own cause, e.g. a name that does
            // not resolve, is known), then every 30 s while it lasts.
            if lastWarning.map({ ContinuousClock.now - $0 >= Self.outageReminder }) ?? true {
                let cause = producer.lastClientError ?? "no answer within 2 s"
                logger.warning(
                    lastWarning == nil ? "broker unreachable; pausing publishing until it is back" : "broker still unreachable",
                    metadata: [
                        "error": "\(firstError)", "brokers": "\(producer.configuration.bootstrapServers)", "cause": "\(cause)",
                        "unreachable_for": "\(ContinuousClock.now - started)",
                    ])
                health.brokerUnreachable("\(cause); \(firstError)")
                lastWarning = .now
            }
            firstProbe = false
            await doorbell.wait(timeout: backoff.next())
        }
        return false
    }

    /// How often a lasting broker outage is logged again.
    static let outageReminder = Duration.seconds(30)
}

/// Exponential pauses while a dependency is down: 250 ms doubling to 5 s, no attempts involved.
struct OutageBackoff: Sendable {
    private var next_ = Duration.milliseconds(250)

    mutating func next() -> Duration {
        defer { next_ = min(next_ * 2, .seconds(5)) }
        return next_
    }

    mutating func reset() {
        next_ = .milliseconds(250)
    }
}
