/**
 * DTI second-read viewer: import (radiologists), recent studies, and the viewport with overlays.
 * The open study is in the route (#/viewer/<studyId>) so that a reload comes back to it.
 */
import { useEffect } from 'react';
import { useRoute } from '../../stores/route.js';
import { hasPermission, useSession } from '../../stores/session.js';
import { fetchStudies, resetViewForStudy, useViewer, watchImports } from '../../stores/viewer.js';
import { ImportPanel } from './ImportPanel.js';
import { StudiesList } from './StudiesList.js';
import { StudyView } from './StudyView.js';
import { dropVolumesExcept } from './volumes.js';

export function ViewerArea() {
  const session = useSession((s) => s.session);
  const canImport = hasPermission(session, 'imaging:write');
  const segments = useRoute((s) => s.segments);
  const studyId = segments[0] === 'viewer' && segments[1] ? segments[1] : null;
  const studies = useViewer((s) => s.studies);
  const study = studies?.find((s) => s.id === studyId) ?? null;

  useEffect(() => {
    watchImports(canImport);
    void fetchStudies();
  }, [canImport]);

  useEffect(() => {
    resetViewForStudy();
    dropVolumesExcept(studyId);
  }, [studyId]);

  return (
    <div className="viewer" data-testid="viewer">
      <aside className="viewer__side" aria-label="Studies and import">
        {canImport ? <ImportPanel /> : null}
        <StudiesList selectedId={studyId} />
      </aside>
      <section className="viewer__main" aria-label="Image">
        {study ? (
          <StudyView key={study.id} study={study} />
        ) : (
          <div className="viewer__empty">
            <h1>DTI viewer</h1>
            {studyId && studies ? (
              <p>That study is not in the list any more. Choose one from Recent studies.</p>
            ) : (
              <p className="muted">
                {canImport ? 'Import a diffusion series, or open a recent study.' : 'Open a recent study to read it.'} FA, MD and colour-FA maps are shown
                over the b0 image.
              </p>
            )}
          </div>
        )}
      </section>
    </div>
  );
}
