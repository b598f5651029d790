// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Recon",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "xpress", targets: ["xpress"]),
        .executable(name: "rulecheck", targets: ["rulecheck"]),
        .executable(name: "recon", targets: ["recon"]),
        .library(name: "XPRESS", targets: ["XPRESS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        // JavaScriptCore's headers (libjavascriptcoregtk-4.1-dev); the library itself is loaded
        // when the first script needs it, not linked (Sources/CJavaScriptCore/JavaScriptCoreLoader.c).
        .target(name: "CJavaScriptCore"),
        .systemLibrary(name: "CLDAP", path: "Sources/CLDAP", providers: [.apt(["libldap-dev"])]),
        .systemLibrary(name: "CSQLiteConfig", path: "Sources/CSQLiteConfig", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        .target(name: "XMLSource", dependencies: ["CLibXML2"]),
        .target(name: "XPRESS", dependencies: ["XMLSource", "CJavaScriptCore"],
                resources: [.embedInCode("Resources/ReconRules.xml")]),
        .target(name: "Deployment", dependencies: ["XPRESS", "XMLSource"]),
        .target(name: "RuleCheck", dependencies: ["Deployment", "XPRESS", "XMLSource"]),
        .executableTarget(name: "rulecheck", dependencies: [
            "RuleCheck", "CMalloc", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "xpress", dependencies: [
            "XPRESS", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "recon-bench", dependencies: [
            "XPRESS", "Reconciler", "Repository", "TestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "GRDB", package: "GRDB.swift"),
        ], path: "Benchmarks/recon-bench"),
        .target(name: "Connectors", dependencies: ["CLDAP", "CPrefetch", .product(name: "GRDB", package: "GRDB.swift"),
                                                   .product(name: "GRDBSQLite", package: "GRDB.swift")]),
        .target(name: "Repository", dependencies: [
            "Connectors", "CSQLiteConfig", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Reconciler", dependencies: ["Deployment", "Repository", "Connectors", "XPRESS", "XMLSource", "CMalloc", "CPrefetch"]),
        .executableTarget(name: "recon", dependencies: [
            "Reconciler", "RuleCheck", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "XMLSourceTests", dependencies: ["XMLSource"]),
        .testTarget(name: "XPRESSTests", dependencies: ["XPRESS", "xpress", "TestSupport"]),
        .testTarget(name: "RuleCheckTests", dependencies: ["RuleCheck", "Deployment", "rulecheck", "TestSupport"]),
        .target(name: "TestSupport", path: "Tests/Support"),
        .testTarget(name: "ConnectorsTests", dependencies: [
            "TestSupport", "Connectors", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "RepositoryTests", dependencies: ["Repository", "TestSupport"]),
        .testTarget(name: "ReconcilerTests", dependencies: [
            "Reconciler", "recon", "TestSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    ],
    swiftLanguageModes: [.v6]
)
