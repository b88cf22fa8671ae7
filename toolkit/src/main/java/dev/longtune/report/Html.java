package dev.longtune.report;

import tech.tablesaw.api.Table;

/** Tables as plain HTML: a header row and one row per record, numbers right-aligned. */
public final class Html {
    private Html() {}

    public static String table(Table t) { return table(t, false); }

    /** The same, whole numbers with thousands separators where {@code separators} (a page people read). */
    public static String table(Table t, boolean separators) {
        StringBuilder sb = new StringBuilder("<table border=\"1\" cellspacing=\"0\" cellpadding=\"4\">\n<tr>");
        for (String name : t.columnNames()) {
            sb.append("<th>").append(escape(name)).append("</th>");
        }
        sb.append("</tr>\n");
        for (int r = 0; r < t.rowCount(); r++) {
            sb.append("<tr>");
            for (int c = 0; c < t.columnCount(); c++) {
                String v = t.column(c).getString(r);
                boolean numeric = t.column(c).type().name().matches("INTEGER|LONG|DOUBLE|FLOAT|SHORT");
                if (separators && t.column(c).type().name().matches("INTEGER|LONG|SHORT") && v.matches("-?[0-9]+")) {
                    v = String.format(java.util.Locale.ROOT, "%,d", Long.parseLong(v));
                }
                sb.append(numeric ? "<td align=\"right\">" : "<td>").append(escape(v)).append("</td>");
            }
            sb.append("</tr>\n");
        }
        return sb.append("</table>\n").toString();
    }

    public static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
