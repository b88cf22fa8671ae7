// Evaluated by the longtune kernel before the first cell. Afterwards the kernel calls
// dev.longtune.notebook.Notebook.attach(kernel), which registers the toolkit's renderers.
import dev.longtune.config.*;
import dev.longtune.plan.*;
import dev.longtune.notebook.*;
import dev.longtune.report.*;
import dev.longtune.tensor.*;
import dev.longtune.model.*;
import dev.longtune.train.*;
import dev.longtune.device.*;
import dev.longtune.data.*;
import dev.longtune.run.*;
import java.util.*;
import java.nio.file.*;
import static dev.longtune.kernel.Display.display;
import static dev.longtune.kernel.Display.updateDisplay;
import static dev.longtune.kernel.Display.render;
import static dev.longtune.kernel.Cells.eval;
