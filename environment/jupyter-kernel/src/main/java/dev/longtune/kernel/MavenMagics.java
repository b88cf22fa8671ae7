package dev.longtune.kernel;

import java.io.StringReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import javax.xml.parsers.DocumentBuilderFactory;

import io.github.spencerpark.jupyter.kernel.magic.registry.Magics;
import org.eclipse.aether.RepositorySystem;
import org.eclipse.aether.RepositorySystemSession;
import org.eclipse.aether.artifact.DefaultArtifact;
import org.eclipse.aether.collection.CollectRequest;
import org.eclipse.aether.graph.Dependency;
import org.eclipse.aether.repository.RemoteRepository;
import org.eclipse.aether.resolution.ArtifactResult;
import org.eclipse.aether.resolution.DependencyRequest;
import org.eclipse.aether.resolution.DependencyResolutionException;
import org.eclipse.aether.supplier.RepositorySystemSupplier;
import org.eclipse.aether.supplier.SessionBuilderSupplier;
import org.eclipse.aether.util.artifact.JavaScopes;
import org.eclipse.aether.util.filter.DependencyFilterUtils;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.InputSource;

/**
 * Dependencies from a cell, resolved with their transitive dependencies by Maven's own resolver and cached in the
 * usual local repository ({@code ~/.m2/repository}, or {@code -Dmaven.repo.local}, or {@code LONGTUNE_MAVEN_REPO}):
 * <ul>
 *   <li>{@code %maven group:artifact:version [more coordinates]} (also {@code g:a:extension:classifier:version});</li>
 *   <li>{@code %mavenRepo id url} adds a repository searched after those before it (Maven Central is always there);</li>
 *   <li>{@code %%loadFromPOM} on a cell's first line: the rest of the cell is a POM, or just its {@code <dependencies>},
 *   {@code <dependency>} or {@code <repositories>} elements; their runtime class path is added.</li>
 * </ul>
 * Every jar found is added to the cells' class path; what was added is printed, one line per artifact.
 */
final class MavenMagics {
    static final List<String> NAMES = List.of("maven", "mavenRepo");
    static final String CENTRAL = "https://repo.maven.apache.org/maven2/";

    private final Consumer<String> addToClasspath;
    private final Map<String, RemoteRepository> repositories = new LinkedHashMap<>();
    private RepositorySystem system;

    MavenMagics(Consumer<String> addToClasspath) {
        this.addToClasspath = addToClasspath;
        repositories.put("central", repository("central", CENTRAL));
    }

    void register(Magics magics) {
        magics.registerLineMagic("maven", args -> {
            if (args.isEmpty()) {
                throw new MagicException("%maven needs coordinates, e.g. %maven org.apache.commons:commons-math3:3.6.1");
            }
            List<Dependency> deps = new ArrayList<>();
            for (String coordinates : args) {
                deps.add(new Dependency(artifact(coordinates, "%maven"), JavaScopes.RUNTIME));
            }
            resolve(deps, List.of(), "%maven " + String.join(" ", args));
            return null;
        });
        magics.registerLineMagic("mavenRepo", args -> {
            if (args.size() != 2) {
                throw new MagicException("%mavenRepo takes an id and a URL, e.g. %mavenRepo jitpack https://jitpack.io");
            }
            repositories.put(args.get(0), repository(args.get(0), args.get(1)));
            return null;
        });
    }

    /** {@code %%loadFromPOM}: the cell's body is a POM (whole or in part). */
    void loadFromPom(String pom) throws Exception {
        Document doc = parse(pom);
        List<Dependency> deps = new ArrayList<>();
        NodeList ds = doc.getElementsByTagName("dependency");
        for (int i = 0; i < ds.getLength(); i++) {
            Element d = (Element) ds.item(i);
            if (d.getParentNode() instanceof Element parent && parent.getTagName().equals("dependencies")
                    && parent.getParentNode() instanceof Element owner && owner.getTagName().equals("dependencyManagement")) {
                continue; // management, not a dependency
            }
            String scope = text(d, "scope");
            if (scope != null && (scope.equals("test") || scope.equals("provided") || scope.equals("system"))) {
                continue;
            }
            String g = text(d, "groupId"), a = text(d, "artifactId"), v = text(d, "version");
            if (g == null || a == null || v == null) {
                throw new MagicException("%%loadFromPOM: a <dependency> needs groupId, artifactId and version (got "
                        + g + ":" + a + ":" + v + "); properties and managed versions are not resolved in a cell");
            }
            String type = text(d, "type"), classifier = text(d, "classifier");
            deps.add(new Dependency(new DefaultArtifact(g, a, classifier == null ? "" : classifier, type == null ? "jar" : type, v),
                    JavaScopes.RUNTIME));
        }
        List<RemoteRepository> extra = new ArrayList<>();
        NodeList rs = doc.getElementsByTagName("repository");
        for (int i = 0; i < rs.getLength(); i++) {
            Element r = (Element) rs.item(i);
            String id = text(r, "id"), url = text(r, "url");
            if (id == null || url == null) {
                throw new MagicException("%%loadFromPOM: a <repository> needs an id and a url");
            }
            extra.add(repository(id, url));
        }
        if (deps.isEmpty()) {
            throw new MagicException("%%loadFromPOM: no <dependency> in the cell (give a POM or its <dependencies>)");
        }
        resolve(deps, extra, "%%loadFromPOM");
    }

    /** Resolves {@code deps} with their runtime dependencies and adds every file to the class path. */
    private void resolve(List<Dependency> deps, List<RemoteRepository> extra, String what) throws MagicException {
        List<RemoteRepository> repos = new ArrayList<>(repositories.values());
        repos.addAll(extra);
        try (RepositorySystemSession.CloseableSession session = new SessionBuilderSupplier(system()).get()
                .withLocalRepositoryBaseDirectories(localRepository())
                .setSystemProperties(System.getProperties())
                .setConfigProperty("aether.connector.userAgent", "longtune-kernel")
                .build()) {
            CollectRequest collect = new CollectRequest(deps, List.of(), repos);
            DependencyRequest request = new DependencyRequest(collect, DependencyFilterUtils.classpathFilter(JavaScopes.RUNTIME));
            List<ArtifactResult> results = system().resolveDependencies(session, request).getArtifactResults();
            for (ArtifactResult r : results) {
                Path file = r.getArtifact().getPath();
                addToClasspath.accept(file.toString());
                System.out.println("added " + r.getArtifact() + "  (" + file + ")");
            }
        } catch (DependencyResolutionException e) {
            throw new MagicException(what + ": " + firstLine(e) + " (searched " + String.join(", ",
                    repos.stream().map(r -> r.getId() + " " + r.getUrl()).toList()) + "; local repository "
                    + localRepository() + ")");
        }
    }

    private synchronized RepositorySystem system() {
        if (system == null) {
            system = new RepositorySystemSupplier().get();
        }
        return system;
    }

    /** {@code LONGTUNE_MAVEN_REPO}, else {@code -Dmaven.repo.local}, else {@code ~/.m2/repository}. */
    static Path localRepository() {
        String env = System.getenv("LONGTUNE_MAVEN_REPO");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        String property = System.getProperty("maven.repo.local");
        if (property != null && !property.isBlank()) {
            return Path.of(property);
        }
        return Path.of(System.getProperty("user.home"), ".m2", "repository");
    }

    private static DefaultArtifact artifact(String coordinates, String magic) throws MagicException {
        try {
            return new DefaultArtifact(coordinates);
        } catch (IllegalArgumentException e) {
            throw new MagicException(magic + ": '" + coordinates + "' is not group:artifact:version (or "
                    + "group:artifact:extension:classifier:version)");
        }
    }

    private static RemoteRepository repository(String id, String url) {
        return new RemoteRepository.Builder(id, "default", url.endsWith("/") ? url : url + "/").build();
    }

    private static Document parse(String xml) throws Exception {
        String body = xml.strip();
        if (!body.startsWith("<project") && !body.startsWith("<?xml")) {
            body = "<project>" + body + "</project>"; // a fragment: <dependencies>, <dependency>, <repositories>
        }
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        try {
            return f.newDocumentBuilder().parse(new InputSource(new StringReader(body)));
        } catch (org.xml.sax.SAXParseException e) {
            throw new MagicException("%%loadFromPOM: not well-formed XML at line " + e.getLineNumber() + ": " + e.getMessage());
        }
    }

    /** The trimmed text of {@code parent}'s direct child {@code name}, or null. */
    private static String text(Element parent, String name) {
        for (var n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
            if (n instanceof Element e && e.getTagName().equals(name)) {
                String t = e.getTextContent().strip();
                return t.isEmpty() ? null : t;
            }
        }
        return null;
    }

    private static String firstLine(Exception e) {
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
