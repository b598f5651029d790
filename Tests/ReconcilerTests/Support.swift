import Connectors
import Deployment
import Foundation
import Repository
import Testing
import TestSupport
import XMLSource
@testable import Reconciler
@testable import recon

/// A deployment in a temporary folder: configuration XML, data files, a repository.
final class Deployed {
    let directory: URL
    let engine: Engine

    var repository: any IdentityRepository { engine.repository }

    /// The configuration `files` and `users` in a new repository of `backend`.
    init(backend: Backend = .sqlite, repositoryURL: String? = nil, _ files: [String: String], users: [User] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("recon-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, content) in files {
            let url = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(content.utf8).write(to: url)
        }
        let (deployment, problems) = ConfigurationLoader.load(directory: directory.path)
        guard problems.isEmpty else { throw EngineError(problems.map(\.description).joined(separator: "\n")) }
        let repository = try openRepository(repositoryURL ?? backend.newRepositoryURL(in: directory.path))
        try repository.saveUsers(users)
        engine = Engine(deployment: deployment, configDirectory: directory.path, repository: repository)
    }

    func file(_ name: String) throws -> String {
        String(decoding: try Data(contentsOf: directory.appendingPathComponent(name)), as: UTF8.self)
    }

    func run(_ resource: String, mode: RunOptions.Mode = .full, dryRun: Bool = false) throws -> RunSummary {
        var options = RunOptions()
        options.mode = mode
        options.dryRun = dryRun
        options.server = "test"
        return try engine.reconcile(resource, options: options)
    }

    func index(_ resource: String) throws -> [String: IndexEntry] { try repository.indexEntries(resource: resource, attributes: true) }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

/// HR's policy acting through the proxy administrator `Admin`, correlating by employee id, with
/// a response to every situation but CONFIRMED and COLLISION; `options` goes in as written.
func respondingPolicy(options: String = "") -> String {
    """
    <ReconcilePolicy name='P' resource='HR'>
      <Correlation correlationRule='By Employee Id'/>
      <Workflow proxyAdministrator='Admin'/>
      \(options)
      <Responses>
        <Response situation='UNMATCHED' action='CREATE_NEW_USER'/>
        <Response situation='FOUND' action='LINK_ACCOUNT'/>
        <Response situation='UNASSIGNED' action='LINK_ACCOUNT'/>
        <Response situation='DISPUTED' action='DELETE_ACCOUNT'/>
        <Response situation='MISSING' action='CREATE_ACCOUNT'/>
        <Response situation='DELETED' action='UNLINK_ACCOUNT'/>
      </Responses>
    </ReconcilePolicy>
    """
}

/// A FlatFile resource `HR` over `hr.csv` (uid, email, empId, disabled) and a policy.
func hrConfiguration(policy: String, extra: String = "") -> String {
    """
    <Waveset>
      <Resource name='HR' type='FlatFile'>
        <ResourceAttribute name='file' value='hr.csv'/>
        <ResourceAttribute name='accountId' value='uid'/>
        <ResourceAttribute name='disabledAttribute' value='disabled'/>
      </Resource>
      <Administrator name='Admin' userForm='Form'>
        <Capability name='CreateUser'/><Capability name='CreateAccount'/><Capability name='DeleteAccount'/>
        <Capability name='DisableAccount'/><Capability name='LinkAccount'/><Capability name='UnlinkAccount'/>
      </Administrator>
      <Administrator name='Reader' userForm='Form'/>
      <Form name='Form'>
        <Field name='waveset.accountId'><Expansion><ref>account.accountId</ref></Expansion></Field>
        <Field name='global.email'><Expansion><ref>account.email</ref></Expansion></Field>
        <Field name='global.empId'><Expansion><ref>account.empId</ref></Expansion></Field>
        <Field name='accounts[HR].email'><Expansion><ref>global.email</ref></Expansion></Field>
        <Field name='accounts[HR].empId'><Expansion><ref>global.empId</ref></Expansion></Field>
      </Form>
      <Rule name='By Employee Id' subtype='SUBTYPE_ACCOUNT_CORRELATION_RULE'>
        <RuleArgument name='account'/>
        <cond><notnull><ref>account.empId</ref></notnull>
          <list><new class='com.waveset.object.AttributeCondition'><s>empId</s><s>equals</s><ref>account.empId</ref></new></list>
        </cond>
      </Rule>
      \(policy)
      \(extra)
    </Waveset>
    """
}

func user(_ name: String, empId: String? = nil, assigned: [String] = [], linked: [String] = []) -> User {
    var attributes: [String: AttributeValue] = ["email": .single("\(name)@example.com")]
    if let empId { attributes["empId"] = .single(empId) }
    return User(name: name, attributes: attributes, assignedResources: Set(assigned),
                accounts: Set(linked.map { AccountLink(resource: "HR", accountID: $0) }))
}
