import Foundation
import XMLSource
import XPRESS

/// Output formats of `rulecheck --format`.
public enum ReportFormat: String, CaseIterable, Sendable {
    case text, json, sarif, github, checkstyle

    /// The report in this format.
    public func render(_ report: LintReport, toolVersion: String = RuleCheckVersion.current) -> String {
        switch self {
        case .text: TextReporter.render(report)
        case .json: JSONReporter.render(report)
        case .sarif: SARIFReporter.render(report, version: toolVersion)
        case .github: GitHubReporter.render(report)
        case .checkstyle: CheckstyleReporter.render(report)
        }
    }
}

public enum RuleCheckVersion {
    public static let current = "0.1.0"
}

private func name(of id: String) -> String { LintCatalogue.rule(id)?.name ?? id }

private func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

/// `path:line:col: severity: message [ID]`, notes below, and a summary line.
enum TextReporter {
    static func render(_ report: LintReport) -> String {
        var out = ""
        for finding in report.findings {
            let l = finding.location
            out += "\(l.file):\(l.line):\(l.column): \(finding.severity.rawValue): \(finding.message) [\(finding.id)]\n"
            for note in finding.notes {
                let place = note.location.map { "\($0.file):\($0.line):\($0.column): " } ?? ""
                out += "\(place)note: \(note.message)\n"
            }
        }
        out += "\(plural(report.errorCount, "error")), \(plural(report.warningCount, "warning")) in \(plural(report.fileCount, "file"))\n"
        return out
    }
}

/// `{"findings": [...], "summary": {...}}`.
enum JSONReporter {
    static func render(_ report: LintReport) -> String {
        let findings = report.findings.map { finding -> Value in
            let l = finding.location
            return .map([("id", .string(finding.id)), ("name", .string(name(of: finding.id))),
                         ("severity", .string(finding.severity.rawValue)), ("message", .string(finding.message)),
                         ("file", .string(l.file)), ("line", .int(Int64(l.line))), ("column", .int(Int64(l.column))),
                         ("endLine", .int(Int64(l.line))), ("endColumn", .int(Int64(l.column)))])
        }
        let summary = Value.map([("errors", .int(Int64(report.errorCount))), ("warnings", .int(Int64(report.warningCount))),
                                 ("files", .int(Int64(report.fileCount)))])
        return ValueJSON.encode(.map([("findings", .list(findings)), ("summary", summary)]), pretty: true) + "\n"
    }
}

/// SARIF 2.1.0 as GitHub code scanning accepts it.
enum SARIFReporter {
    static func render(_ report: LintReport, version: String) -> String {
        let rules = LintCatalogue.all.map { rule -> Value in
            .map([("id", .string(rule.id)), ("name", .string(rule.name)),
                  ("shortDescription", .map([("text", .string(rule.summary))])),
                  ("fullDescription", .map([("text", .string(rule.rationale))])),
                  ("help", .map([("text", .string("\(rule.rationale)\n\nFails:\n\(rule.badExample)\nPasses:\n\(rule.goodExample)")),
                                 ("markdown", .string("\(rule.rationale)\n\n**Fails:**\n```xml\n\(rule.badExample)```\n\n**Passes:**\n```xml\n\(rule.goodExample)```"))])),
                  ("defaultConfiguration", .map([("level", .string(level(rule.severity)))])),
                  ("properties", .map([("tags", .list([.string("xpress")]))]))])
        }
        let index = Dictionary(uniqueKeysWithValues: LintCatalogue.all.enumerated().map { ($1.id, $0) })
        let results = report.findings.map { finding -> Value in
            let l = finding.location
            var entries: [(String, Value)] = [("ruleId", .string(finding.id))]
            if let ruleIndex = index[finding.id] { entries.append(("ruleIndex", .int(Int64(ruleIndex)))) }
            entries += [
                ("level", .string(level(finding.severity))),
                ("message", .map([("text", .string(finding.message))])),
                ("locations", .list([.map([("physicalLocation", .map([
                    ("artifactLocation", .map([("uri", .string(relativeURI(l.file))), ("uriBaseId", .string("%SRCROOT%"))])),
                    ("region", .map([("startLine", .int(Int64(l.line))), ("startColumn", .int(Int64(l.column)))])),
                ]))])])),
            ]
            return .map(entries)
        }
        let driver = Value.map([("name", .string("rulecheck")), ("version", .string(version)),
                                ("informationUri", .string("https://example.invalid/rulecheck")), ("rules", .list(rules))])
        let run = Value.map([("tool", .map([("driver", driver)])), ("results", .list(results)),
                             ("columnKind", .string("unicodeCodePoints"))])
        let sarif = Value.map([("$schema", .string("https://json.schemastore.org/sarif-2.1.0.json")), ("version", .string("2.1.0")),
                               ("runs", .list([run]))])
        return ValueJSON.encode(sarif, pretty: true) + "\n"
    }

    static func level(_ severity: Severity) -> String {
        switch severity {
        case .error: "error"
        case .warning: "warning"
        case .note: "note"
        }
    }

    /// A URI relative to the working directory, with `/` separators and percent-encoding.
    static func relativeURI(_ path: String) -> String {
        var relative = path
        let cwd = FileManager.default.currentDirectoryPath + "/"
        if relative.hasPrefix(cwd) { relative = String(relative.dropFirst(cwd.count)) }
        while relative.hasPrefix("./") { relative = String(relative.dropFirst(2)) }
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: ":")
        return relative.addingPercentEncoding(withAllowedCharacters: allowed) ?? relative
    }
}

/// GitHub Actions workflow commands: `::error file=F,line=L,col=C,title=ID::message`.
enum GitHubReporter {
    static func render(_ report: LintReport) -> String {
        var out = ""
        for finding in report.findings {
            let l = finding.location
            let command = finding.severity == .error ? "error" : finding.severity == .warning ? "warning" : "notice"
            out += "::\(command) file=\(property(l.file)),line=\(l.line),col=\(l.column),title=\(property(finding.id))::\(data(finding.message))\n"
        }
        return out
    }

    static func data(_ text: String) -> String {
        text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D")
            .replacingOccurrences(of: "\n", with: "%0A")
    }

    static func property(_ text: String) -> String {
        data(text).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }
}

/// Checkstyle XML, which many CI tools import.
enum CheckstyleReporter {
    static func render(_ report: LintReport) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<checkstyle version=\"4.3\">\n"
        var byFile: [(String, [Diagnostic])] = []
        for finding in report.findings {
            if byFile.last?.0 == finding.location.file { byFile[byFile.count - 1].1.append(finding) } else { byFile.append((finding.location.file, [finding])) }
        }
        for (file, findings) in byFile {
            out += "  <file name=\"\(escape(file))\">\n"
            for finding in findings {
                out += "    <error line=\"\(finding.location.line)\" column=\"\(finding.location.column)\" severity=\"\(finding.severity.rawValue)\" message=\"\(escape(finding.message))\" source=\"rulecheck.\(finding.id)\"/>\n"
            }
            out += "  </file>\n"
        }
        return out + "</checkstyle>\n"
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n": out += "&#10;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
