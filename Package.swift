// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Recon",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "xpress", targets: ["xpress"]),
        .executable(name: "rulecheck", targets: ["rulecheck"]),
        .library(name: "XPRESS", targets: ["XPRESS"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CJavaScriptCore", pkgConfig: "javascriptcoregtk-4.1",
                       providers: [.apt(["libjavascriptcoregtk-4.1-dev"])]),
        .target(name: "XMLSource", dependencies: ["CLibXML2"]),
        .target(name: "XPRESS", dependencies: ["XMLSource", "CJavaScriptCore"],
                resources: [.embedInCode("Resources/ReconRules.xml")]),
        .target(name: "Deployment", dependencies: ["XPRESS", "XMLSource"]),
        .target(name: "RuleCheck", dependencies: ["Deployment", "XPRESS", "XMLSource"]),
        .executableTarget(name: "rulecheck", dependencies: [
            "RuleCheck", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "xpress", dependencies: [
            "XPRESS", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "recon-bench", dependencies: [
            "XPRESS", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Benchmarks/recon-bench"),
        .testTarget(name: "XMLSourceTests", dependencies: ["XMLSource"]),
        .testTarget(name: "XPRESSTests", dependencies: ["XPRESS"]),
        .testTarget(name: "RuleCheckTests", dependencies: ["RuleCheck", "Deployment", "rulecheck"]),
    ],
    swiftLanguageModes: [.v6]
)
