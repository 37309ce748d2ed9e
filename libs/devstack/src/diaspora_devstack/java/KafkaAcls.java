// Adds ACLs through Kafka's Admin API (the broker's jars have no kafka-acls tool).
// Run as a single-file program: java -cp '<kafka libs>/*' KafkaAcls.java <client.properties> <acls>
// <acls>: one per line, "principal|resourceType|patternType|name|operation", all ALLOW,
// any host; e.g. "User:registry|TOPIC|PREFIXED|registry.|WRITE".
import java.io.FileReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class KafkaAcls {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        try (FileReader reader = new FileReader(args[0])) {
            props.load(reader);
        }
        List<AclBinding> bindings = new ArrayList<>();
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            if (line.isBlank()) {
                continue;
            }
            String[] f = line.trim().split("\\|");
            bindings.add(new AclBinding(
                new ResourcePattern(ResourceType.fromString(f[1]), f[3], PatternType.fromString(f[2])),
                new AccessControlEntry(f[0], "*", AclOperation.fromString(f[4]), AclPermissionType.ALLOW)));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(bindings).all().get();
        }
        System.out.println("created " + bindings.size() + " ACLs");
    }
}
