import Connectors
import Deployment
import Repository
import XPRESS

/// Step 4 of classification, for an account neither links nor assignments claim. It holds only
/// what a correlation reads (the rules prepared once, the repository), so that a run can hand
/// correlations to other threads while it goes on; any number may run at once.
struct Correlator: Sendable {
    typealias Outcome = ReconciliationRun.Outcome

    /// The resource's name.
    let resource: String
    let correlationRule: String
    let confirmationRule: String?
    let correlationCall: PreparedRuleCall?
    let confirmationCall: PreparedRuleCall?
    let repository: any IdentityRepository
    /// Whether outcomes carry how they were reached (explainSituation).
    let explaining: Bool

    /// The correlation rule's candidates for each of `accounts`, less those the confirmation
    /// rule rejects. The rules run per account; the candidates of all of them are read from
    /// the repository together. An account whose rule fails has that error as its result, and
    /// a failed read is every account's.
    func correlate(_ accounts: [StreamedAccount]) -> [Result<Outcome, any Error>] {
        let questions = accounts.map { streamed in Result { try ask(streamed) } }
        let requests = questions.compactMap { try? $0.get().request }
        let answers: [[Candidate]]
        do {
            answers = try repository.correlationCandidates(for: requests, withUsers: confirmationRule != nil)
            guard answers.count == requests.count else { throw EngineError("the repository answered \(answers.count) of \(requests.count) correlations") }
        } catch {
            return questions.map { question in Result { _ = try question.get(); throw error } }
        }
        // A question that failed has no answer: `get()` throws before the next one is taken.
        var next = answers.makeIterator()
        return questions.map { question in Result { try outcome(question.get(), next.next()!) } }
    }

    /// One account's correlation up to the repository read: its rule's result as a request.
    private struct Question {
        let streamed: StreamedAccount
        let account: Account
        let accountValue: Value
        let request: CorrelationRequest
        let notes: [String]
    }

    private func ask(_ streamed: StreamedAccount) throws -> Question {
        let account = streamed.account
        let accountValue = Values.account(account)
        guard let correlation = correlationCall else {
            throw EngineError("no rule named '\(correlationRule)' is loaded")
        }
        let result = try correlation.call(accountValue)
        let notes = explaining ? ["correlation rule '\(correlationRule)' returned \(ValueJSON.encode(result))"] : []
        return Question(streamed: streamed, account: account, accountValue: accountValue, request: try request(result), notes: notes)
    }

    /// The outcome of `question` given the candidates the repository found for it (with their
    /// user views' ingredients when there is a confirmation rule).
    private func outcome(_ question: Question, _ found: [Candidate]) throws -> Outcome {
        let (streamed, account, accountValue) = (question.streamed, question.account, question.accountValue)
        var notes = question.notes
        var candidates = found.map(\.name)
        if explaining { notes.append(candidates.isEmpty ? "no candidate users" : "candidates: \(candidates.joined(separator: ", "))") }
        var users: [String: User] = [:]
        if let confirmation = confirmationRule, !candidates.isEmpty {
            guard let confirmationCall else { throw EngineError("no rule named '\(confirmation)' is loaded") }
            var confirmed: [String] = []
            for candidate in found {
                guard let user = candidate.user else { continue }
                users[candidate.name] = user
                let view = Values.userView(user, accounts: candidate.accounts)
                let verdict = Values.verdict(try confirmationCall.call(view, accountValue))
                if explaining { notes.append("confirmation rule '\(confirmation)' \(verdict ? "confirmed" : "rejected") \(candidate.name)") }
                if verdict { confirmed.append(candidate.name) }
            }
            candidates = confirmed
        }
        let explanation = explaining ? notes.joined(separator: "; ") : nil
        switch candidates.count {
        case 0:
            return Outcome(accountID: account.id, streamed: streamed, situation: .unmatched, owner: nil, explanation: explanation)
        case 1:
            let user = try users[candidates[0]] ?? repository.user(named: candidates[0])
            let assigned = user?.assignedResources.contains(resource) ?? false
            return Outcome(accountID: account.id, streamed: streamed, situation: assigned ? .found : .unassigned, owner: candidates[0], explanation: explanation)
        default:
            return Outcome(accountID: account.id, streamed: streamed, situation: .disputed, owner: nil,
                           explanation: explanation ?? "correlated with \(candidates.joined(separator: ", "))")
        }
    }

    /// A correlation result as the users it names: names, AttributeConditions (AND-ed) or an
    /// attribute map (each `equals`).
    private func request(_ result: Value) throws -> CorrelationRequest {
        var names: [String] = []
        var conditions: [UserCondition] = []
        func add(_ item: Value) throws {
            switch item {
            case .null: break
            case .object(let object as AttributeCondition):
                let opName = object.operatorName.stringValue
                guard let op = UserCondition.Operator(rawValue: opName) else {
                    throw EngineError("the correlation rule returned an AttributeCondition with operator '\(opName)'; use \(UserCondition.Operator.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                conditions.append(UserCondition(attribute: object.attrName.stringValue, op: op, operand: object.operand.stringValue))
            case .map(let map):
                for (key, value) in map.entries { conditions.append(UserCondition(attribute: key, op: .equals, operand: value.stringValue)) }
            case .list(let list): for element in list.items { try add(element) }
            default: names.append(item.stringValue)
            }
        }
        try add(result)
        return CorrelationRequest(names: names, conditions: conditions)
    }
}
